# One image for every Chorus process; docker-compose.yml picks the command.
# CHORUS_BASE_IMAGE: any image with python3 and its venv module (python:3.11-slim
# by default; Debian's python3 and python3-venv do as well).
ARG CHORUS_BASE_IMAGE=python:3.11-slim
FROM ${CHORUS_BASE_IMAGE}
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# No process needs root: each runs as chorus, in its own home.
RUN python3 -m venv /opt/venv \
    && useradd --system --create-home --home-dir /home/chorus --shell /usr/sbin/nologin chorus
# The package alone (.dockerignore sends nothing else), in one layer, installed
# and removed: a checkout in the working directory would shadow the installed
# chorus package (its folder chorus/ holds only the CLI).
COPY . /src
RUN pip install /src && rm -rf /src
WORKDIR /home/chorus
USER chorus
