# Upstream CosyVoice's source as an image of its own, for gpu.Dockerfile to copy
# from (no package index carries it). Build it from a checkout of commit ace7c47
# with third_party/Matcha-TTS (scripts/gpu_install.sh says how to get one):
#   docker build -t chorus/cosyvoice-source:ace7c47 \
#       -f deploy/compose/cosyvoice-source.Dockerfile CHECKOUT
FROM scratch
COPY . /
