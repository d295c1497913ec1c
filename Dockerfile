# syntax=docker/dockerfile:1
#
# inferprobe container image.
#
#   docker build -t inferprobe \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --rm -p 9788:9788 inferprobe        # probes its embedded simulator
#
# See docs/deploy.md. deploy/deploy_test.go keeps the Go version below in step with go.mod and
# EXPOSE with the daemon's default listen port.

# Build stage. cgo is required: go-nvml is a cgo binding that dlopens libnvidia-ml.so.1 at run
# time, so the binary links only against glibc and runs on machines without a GPU driver (the
# accelerator collector then reports inferprobe_accelerator_up 0). Bookworm's glibc (2.36) is
# the one the runtime stage ships, so the binary's glibc symbol versions are always satisfied.
FROM golang:1.26-bookworm AS build

WORKDIR /src

# Modules first, in their own layer, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .

# Version information goes in through the Makefile's ldflags (prometheus/common/version), so
# `inferprobe --version` and the inferprobe_build_info series name the build. .git is not in the
# build context (.dockerignore), hence the build arguments. The C flags are Go's defaults, less
# the warnings about NVML functions that nvml.h marks deprecated (go-nvml binds them all).
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 GOFLAGS=-trimpath CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" \
    make build BIN=/out/inferprobe VERSION="$VERSION" REVISION="$REVISION" BRANCH="$BRANCH" \
 && /out/inferprobe --version

# Runtime stage: distroless with glibc (the cgo build needs it) and CA certificates (https
# targets), no shell, no package manager; the :nonroot tag runs as uid/gid 65532.
FROM gcr.io/distroless/base-debian12:nonroot

ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="inferprobe" \
      org.opencontainers.image.description="Prometheus exporter and continuous synthetic prober for LLM inference endpoints" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.source="https://github.com/inferprobe/inferprobe"

COPY --from=build /out/inferprobe /bin/inferprobe

# On a GPU host the NVIDIA Container Toolkit injects libnvidia-ml.so.1 and the device nodes when
# the container asks for GPUs (docker run --gpus, or the Kubernetes device plugin). NVML belongs
# to the "utility" driver capability; asking for nothing more keeps the CUDA compute libraries
# out of the container. NVIDIA_VISIBLE_DEVICES is deliberately not set here: which GPUs the
# container sees is the runtime's (or the pod spec's) decision.
ENV NVIDIA_DRIVER_CAPABILITIES=utility

USER 65532:65532
EXPOSE 9788

# No default CMD: with no --config.file the daemon starts its embedded simulator on loopback and
# probes it, so a bare `docker run` shows every series at once. Pass flags as arguments, e.g.
#   docker run -v "$PWD/inferprobe.yml:/etc/inferprobe/inferprobe.yml:ro" -p 9788:9788 \
#     inferprobe --config.file=/etc/inferprobe/inferprobe.yml
ENTRYPOINT ["/bin/inferprobe"]
