# One image for every Chorus process; docker-compose.yml picks the command.
# CHORUS_BASE_IMAGE: any image with python3 and its venv module (python:3.11-slim
# by default; Debian's python3 and python3-venv do as well).
ARG CHORUS_BASE_IMAGE=python:3.11-slim
FROM ${CHORUS_BASE_IMAGE}
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /app
# The package alone (.dockerignore sends nothing else), in one layer.
COPY . .
RUN pip install . && rm -rf /app/build
# No process needs root: each runs as chorus, with its home (and Celery's
# schedule and state) in /tmp.
RUN useradd --system --no-create-home --home-dir /tmp --shell /usr/sbin/nologin chorus
USER chorus
