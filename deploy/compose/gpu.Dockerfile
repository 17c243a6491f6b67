# The image of a CosyVoice2 GPU worker (docker-compose.yml, profile gpu). Like
# scripts/gpu_install.sh, without its GPU checks (a build has no GPU): Chorus
# with the gpu extra (torch's CUDA 12.6 wheels carry their own CUDA libraries;
# the host's driver comes in through the NVIDIA container toolkit),
# onnxruntime-gpu as the only onnxruntime, and upstream CosyVoice at ace7c47 in
# /opt/cosyvoice-ace7c47 (the registry's files.source). Upstream is on no
# package index: it comes from the image COSYVOICE_SOURCE_IMAGE, which
# deploy/compose/cosyvoice-source.Dockerfile makes from a checkout. Build it
# from the repository's root.
ARG CHORUS_BASE_IMAGE=python:3.11-slim
ARG COSYVOICE_SOURCE_IMAGE=chorus/cosyvoice-source:ace7c47
FROM ${COSYVOICE_SOURCE_IMAGE} AS cosyvoice-source

FROM ${CHORUS_BASE_IMAGE}
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv \
    && useradd --system --create-home --home-dir /home/chorus --shell /usr/sbin/nologin chorus
# The package alone (.dockerignore), installed and removed, as in the Dockerfile.
# piper-tts pulls the CPU onnxruntime, which would hide the GPU build.
COPY . /src
RUN pip install '/src[gpu]' \
    && pip uninstall -y onnxruntime onnxruntime-gpu \
    && pip install --no-deps onnxruntime-gpu==1.22.0 \
    && rm -rf /src
COPY --from=cosyvoice-source / /opt/cosyvoice-ace7c47
WORKDIR /home/chorus
USER chorus
