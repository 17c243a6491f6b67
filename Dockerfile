# One image for every Chorus process; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY configs configs
COPY tasks tasks
COPY workers workers
COPY api api
COPY chorus chorus
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
