# syntax=docker/dockerfile:1
# virtnet container image: the controller (`virtnet run`) and the node agent (`virtnet agent`) share it.
#
# Stage 1 builds wheels only; stage 2 installs those wheels into a clean python:3.11-slim with no
# compiler, no build dependencies and no pip cache. The base is pinned by tag; pin it by digest
# (python:3.11-slim@sha256:...) in your release pipeline for byte-for-byte reproducible builds.
#
# Build:  docker build -t quay.io/virtnet/virtnet:0.1.0 .

FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Only what the build needs (see .dockerignore): metadata first, then the package.
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler

# The project wheel, then wheels for its pinned dependencies (resolved from the wheel's metadata).
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/virtnet-*.whl


FROM python:3.11-slim

ARG VERSION=0.1.0
ARG REVISION=unknown

LABEL org.opencontainers.image.title="virtnet" \
      org.opencontainers.image.description="GitOps reconciler for VM networking on OpenShift Virtualization / KubeVirt" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/virtnet/virtnet" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Runtime tools only: git (GitPython shells out to it), ssh for ssh:// remotes, gnupg to verify signed
# commits, CA certificates for https remotes and forge APIs. No compilers or -dev packages.
# Versions are not pinned on purpose: the base tag fixes the Debian release, and security updates of
# these packages must flow in on every rebuild (a pinned version vanishes from the archive when patched).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git gnupg openssh-client \
    && rm -rf /var/lib/apt/lists/*

# Install the wheels from the builder without copying them into a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/virtnet-*.whl \
    && virtnet --help > /dev/null

# Non-root user with a fixed uid (the chart sets runAsUser 65532 except on OpenShift, where the SCC
# assigns one). It owns nothing in the image: the root filesystem is mounted read-only at run time.
RUN groupadd --system --gid 65532 virtnet \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin virtnet

USER 65532
WORKDIR /tmp

ENTRYPOINT ["virtnet"]
CMD ["run"]
