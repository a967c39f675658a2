# One image for every Inkwell process; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    INKWELL_DATA_DIR=/var/lib/inkwell \
    HF_HOME=/var/cache/huggingface

WORKDIR /app
# torch first and pinned: on Linux this is the CUDA build, which also runs on CPU-only hosts.
RUN pip install "torch==2.13.0"
COPY pyproject.toml README.md alembic.ini ./
COPY inkwell ./inkwell
COPY inkwell_cli ./inkwell_cli
COPY webui ./webui
COPY worker ./worker
COPY migrations ./migrations
COPY training ./training
RUN pip install . \
 && useradd --system --uid 10001 --home /var/lib/inkwell inkwell \
 && mkdir -p /var/lib/inkwell /var/cache/huggingface \
 && chown inkwell /var/lib/inkwell /var/cache/huggingface
USER inkwell
EXPOSE 8000
CMD ["inkwell", "serve"]
