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

.PHONY: install proto run test lint lock fmt bench-backbone bench-fanout bench-gateway bench-enforcement \
        bench-media bench-messaging bench-replay bench-directory demo clean web web-test \
        screenshots browser

install: $(STAMP) $(GEN)

# Exactly the locked third-party packages (requirements/dev.txt, hashes checked), then the
# runtime package `kith` and the development package `kith-dev` (tools/: embedded
# infrastructure, dev stack, demo, benchmarks), both editable and without dependencies.
# The image installs requirements/runtime.txt and `kith` only.
$(STAMP): pyproject.toml tools/pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps -e '.[dev]' -e tools
	mkdir -p $(VENV)/src-links && ln -sfn ../../services $(VENV)/src-links/kith
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

# The web app (web/): npm is a build dependency, like Maven. Its typed API client is
# generated from the gateway's OpenAPI document, produced without a running stack.
WEB_SRC := $(filter-out web/src/api/schema.d.ts,$(shell find web/src web/scripts -type f 2>/dev/null)) \
           web/index.html web/vite.config.ts web/tsconfig.json
GATEWAY_API := $(wildcard services/gateway/*.py services/gateway/routes/*.py)

web: web/dist/index.html

web/node_modules/.installed: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "make web: npm is missing; install Node.js 18+ and npm (Debian: apt-get install -y nodejs npm)" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund
	touch $@

web/openapi.json: $(GATEWAY_API) $(STAMP) $(GEN)
	$(KITH) gateway openapi --out $@

web/src/api/schema.d.ts: web/openapi.json web/node_modules/.installed
	cd web && npm run api

web/dist/index.html: $(WEB_SRC) web/src/api/schema.d.ts web/node_modules/.installed
	cd web && npm run build

web-test: web
	cd web && npm test

# PNGs of the main screens at phone and desktop widths, used by docs/web.md.
screenshots: install web
	$(PY) -m tests.integration.web.screenshots docs/web

run: install web
	$(KITH) dev up

# The browser tests drive Debian's Chromium (never a downloaded browser build): install it
# when missing and we may (root with apt-get), else say which package is needed.
browser:
	@command -v chromium >/dev/null || [ -n "$$KITH_TEST_CHROMIUM" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "make test: the browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2; \
	    exit 1; \
	  fi; }

test: install web browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	cd web && npm test
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format services tests
	$(VENV)/bin/ruff check --fix .

bench-backbone: install
	$(KITH) bench backbone

bench-fanout: install
	$(KITH) bench fanout

bench-gateway: install
	$(KITH) bench gateway

bench-enforcement: install
	$(KITH) bench enforcement

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

# Re-resolve the locks after changing dependencies in pyproject.toml, tools/pyproject.toml or
# requirements/dev.in (pip-tools; the runtime lock constrains the dev lock).
LOCK := $(VENV)/bin/pip-compile -q --generate-hashes --strip-extras --allow-unsafe \
        --no-emit-index-url --no-emit-find-links
lock: install
	$(LOCK) -o requirements/runtime.txt pyproject.toml
	$(LOCK) --extra dev -o requirements/dev.txt pyproject.toml requirements/dev.in

clean:
	rm -rf build services/protos .pytest_cache
