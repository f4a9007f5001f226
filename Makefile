# Kith — one venv, one package, many entry points.
# `make run` brings the whole embedded stack up; `make test` runs every test
# against the real PostgreSQL and Kafka. Both install what they need first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KITH   := $(VENV)/bin/kith
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard proto/*.proto)
GEN    := services/protos/.generated

.PHONY: install proto run test lint fmt bench-backbone bench-fanout bench-gateway \
        bench-media bench-messaging bench-replay bench-directory demo clean

install: $(STAMP) $(GEN)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Generated gRPC code lives in services/protos (the package kith.protos); it is
# never committed and is rebuilt whenever a .proto changes.
proto: $(GEN)
$(GEN): $(PROTOS) $(STAMP)
	rm -rf build/gen services/protos && mkdir -p build/gen services/protos
	$(PY) -m grpc_tools.protoc -Ikith/protos=proto --python_out=build/gen \
	    --grpc_python_out=build/gen --pyi_out=build/gen $(PROTOS)
	cp build/gen/kith/protos/* services/protos/
	echo '"""Generated from proto/ by `make proto`; do not edit."""' > services/protos/__init__.py
	touch $(GEN)

run: install
	$(KITH) dev up

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

fmt: install
	$(VENV)/bin/ruff format services tests
	$(VENV)/bin/ruff check --fix .

bench-backbone: install
	$(KITH) bench backbone

bench-fanout: install
	$(KITH) bench fanout

bench-gateway: install
	$(KITH) bench gateway

bench-media: install
	$(KITH) bench media

bench-messaging: install
	$(KITH) bench messaging

bench-directory: install
	$(KITH) bench directory

bench-replay: install
	$(KITH) bench replay

demo: install
	$(KITH) demo

clean:
	rm -rf build services/protos .pytest_cache
