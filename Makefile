# secure-llm-gateway: `make run` (gateway in front of the mock) and `make test` (the whole suite).
# Everything a fresh Debian machine needs is installed from here: a .venv for Python, and
# Debian packages (redis-server; prometheus, for promtool and a real Prometheus server) through apt
# when they are missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test lint unit integration bench system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's dependencies change. uv (from PyPI, pinned) resolves and installs
# the dev environment in about 10 s where pip takes about a minute: a fifth of a warm CI run's budget.
$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]'
	touch $@

## run: openaimock on :4000 and the gateway on :8080 in front of it, in the foreground (Ctrl-C stops both)
run: $(INSTALLED)
	VENV=$(VENV) scripts/run_local.sh

## system-deps: Debian packages the test suite runs for real
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	{ command -v promtool && command -v prometheus; } >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## lint: ruff and strict mypy
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## test: lint, then every test (unit and integration against real processes)
test: $(INSTALLED) system-deps lint
	$(PY) -m pytest

unit: $(INSTALLED)
	$(PY) -m pytest tests/unit

integration: $(INSTALLED) system-deps
	$(PY) -m pytest tests/integration

## bench: proxy overhead vs direct-to-mock (see bench/RESULTS.md)
bench: $(INSTALLED)
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) bench/proxy_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
