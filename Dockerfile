# syntax=docker/dockerfile:1
# The rollback-bot image: `docker build -t rollback-bot:0.1.0 .`
# Runs as 10001:10001 with a read-only root filesystem (only /tmp is writable, an emptyDir in the
# Helm chart); see helm/rollback-bot.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: the project's wheel and the wheels of its dependencies ----
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (hatchling reads README.md as the long description).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip wheel --wheel-dir /wheels /wheels/rollback_bot-*.whl

# ---- runtime: the wheels only; no compilers, no build tools, no pip cache ----
FROM ${PYTHON_IMAGE}
# matplotlib (charts) keeps its font cache in MPLCONFIGDIR: the only writable place is /tmp.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels rollback-bot \
 && pip uninstall --yes pip setuptools wheel \
 && groupadd --system --gid 10001 rollback-bot \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin rollback-bot
# Nothing but /tmp is written at run time (the chart mounts the root filesystem read-only).
WORKDIR /tmp
USER 10001:10001
EXPOSE 3000
LABEL org.opencontainers.image.title="rollback-bot" \
      org.opencontainers.image.description="ChatOps bot that rolls Kubernetes Deployments back like kubectl rollout undo" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["rollback-bot"]
CMD ["serve"]
