# One image, two entrypoints: `secure-llm-gateway` (default) and `tenantquota-operator`.
# The base is pinned to an exact Python and Debian release; pin its digest too when you mirror it
# (`docker buildx imagetools inspect python:3.11.11-slim-bookworm`). CI cannot build images (no Docker
# engine); tests/test_dockerfile.py lints this file with hadolint and checks the rules below.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY service ./service
COPY openaimock ./openaimock
COPY operator ./operator
# Wheels only (hyperscan, hiredis, uvloop ship manylinux wheels): no compiler in either stage.
RUN /opt/venv/bin/pip install --only-binary=:all: --no-compile ".[operator]" \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM python:3.11.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["secure-llm-gateway"]
