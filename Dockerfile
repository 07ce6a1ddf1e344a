# One image, two entrypoints: `secure-llm-gateway` (default) and `tenantquota-operator`.
# The base is pinned to an exact Python and Debian release; pin its digest too when you mirror it
# (`docker buildx imagetools inspect python:3.11.11-slim-bookworm`). A mirrored or local base needs no
# retagging: `--build-arg PYTHON_IMAGE=registry.example/python:3.11-slim-bookworm`. The test suite
# builds this file unmodified with buildah on a debootstrap base (scripts/images.sh) and runs it on a
# one-node cluster (tests/node); tests/test_dockerfile.py lints it with hadolint.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml ./
# Wheels only (hyperscan, hiredis, uvloop ship manylinux wheels): no compiler in either stage. The
# dependencies get a layer of their own, so a change to the source (`skaffold dev`) rebuilds in
# seconds instead of installing them all again.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['operator']))" > requirements.txt \
    && /opt/venv/bin/pip install --only-binary=:all: --no-compile -r requirements.txt
COPY README.md ./
COPY service ./service
COPY openaimock ./openaimock
COPY operator ./operator
RUN /opt/venv/bin/pip install --only-binary=:all: --no-compile --no-deps . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["secure-llm-gateway"]
