# The reelroi image used by docker-compose.yml (workers, API, one-shot jobs).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY attribution attribution
COPY sinks sinks
COPY infra infra
COPY streams streams
COPY reelroi reelroi
RUN pip install --no-cache-dir . && useradd --system reelroi
USER reelroi
ENTRYPOINT ["reelroi"]
