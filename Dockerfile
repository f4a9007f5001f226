# syntax=docker/dockerfile:1
# One image for every Kith process: `kith identity serve`, `kith feed fanout`,
# `kith gateway serve`, `kith infra prepare`, `kith replay …`.
#
#   docker build -t kith:dev .
#
# The builder generates the gRPC code from proto/ into the package (what
# `make proto` does) and installs the package into a venv; the final stage
# holds that venv and the event schemas only, and runs as an unprivileged user.
# Only the runtime distribution `kith` is installed: the development package `kith-dev`
# (tools/: embedded infrastructure, dev stack, demo, benchmarks) never enters the image
# (tests/unit/test_packaging.py checks the installed file list).

# A tag, not a digest: pin it (python:3.11-slim@sha256:…) where the registry can be reached
# to read the digest; the Python packages themselves are locked with hashes below.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Code generation tools live in a venv of their own and stay in this stage (grpcio-tools:
# the version of requirements/dev.txt, so the generated code matches the locked protobuf).
RUN python -m venv /opt/tools \
 && /opt/tools/bin/pip install "grpcio-tools==1.85.1" \
 && python -m venv /opt/kith
# The runtime's third-party packages exactly as locked (hashes checked), then the package
# itself without dependencies: the image gets what the tests passed with.
COPY requirements/runtime.txt requirements/runtime.txt
RUN /opt/kith/bin/pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml setup.py README.md ./
COPY proto/ proto/
COPY services/ services/
RUN rm -rf services/protos build \
 && mkdir -p build/gen services/protos \
 && /opt/tools/bin/python -m grpc_tools.protoc -Ikith/protos=proto \
      --python_out=build/gen --grpc_python_out=build/gen --pyi_out=build/gen proto/*.proto \
 && cp build/gen/kith/protos/* services/protos/ \
 && echo '"""Generated from proto/ by the image build; do not edit."""' \
      > services/protos/__init__.py \
 && /opt/kith/bin/pip install --no-deps . \
 && /opt/kith/bin/python -m compileall -q /opt/kith/lib
# Fail the build, not the first pod, if a service's migrations were left out of the package.
RUN cd services && for dir in */migrations; do \
      test -n "$(ls /opt/kith/lib/python3.11/site-packages/kith/${dir}/*.sql)" \
        || { echo "missing package data: kith/${dir}" >&2; exit 1; }; \
    done \
 && /opt/kith/bin/kith --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="kith" \
      org.opencontainers.image.description="Kith services, workers and tools (one image)"
RUN groupadd --system --gid 10001 kith \
 && useradd --system --uid 10001 --gid kith --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin kith
COPY --from=builder /opt/kith /opt/kith
COPY schemas/ /opt/kith-schemas/
ENV PATH=/opt/kith/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KITH_SCHEMAS_DIR=/opt/kith-schemas \
    KITH_HOME=/tmp/kith \
    KITH_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
# gRPC services (identity 50051 … feed 50055), the gateway, and every process's /metrics.
EXPOSE 50051 50052 50053 50054 50055 8080 9100
ENTRYPOINT ["kith"]
CMD ["--help"]
