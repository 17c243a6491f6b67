# The image of a CosyVoice2 GPU worker (docker-compose.yml, profile gpu). Like
# scripts/gpu_install.sh, without its GPU checks (a build has no GPU): Chorus
# with the gpu extra (torch's CUDA 12.6 wheels carry their own CUDA libraries;
# the host's driver comes in through the NVIDIA container toolkit),
# onnxruntime-gpu as the only onnxruntime, and upstream CosyVoice at ace7c47,
# which no package index carries. Build it from the repository's root.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN python -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY configs configs
COPY tasks tasks
COPY workers workers
COPY api api
COPY chorus chorus
# piper-tts pulls the CPU onnxruntime, which would hide the GPU build.
RUN pip install --no-cache-dir '.[gpu]' \
    && pip uninstall -y onnxruntime onnxruntime-gpu \
    && pip install --no-cache-dir --no-deps onnxruntime-gpu==1.22.0
RUN git clone --quiet https://github.com/FunAudioLLM/CosyVoice.git /opt/cosyvoice-ace7c47 \
    && git -C /opt/cosyvoice-ace7c47 checkout --quiet ace7c47 \
    && git -C /opt/cosyvoice-ace7c47 submodule update --quiet --init third_party/Matcha-TTS
