# syntax=docker/dockerfile:1
# One image for every VitalStream process (API, stream workers, simulator, migrations): docker-compose.yml
# picks the command. Runtime dependencies only; the dev extra (pytest, ruff, mypy) stays out.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies come from pyproject.toml alone, so a code change reuses this slow layer.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY README.md ./
# Every package named in [tool.setuptools.packages.find] include (tests/test_compose.py checks the two agree).
COPY vitalstream ./vitalstream
COPY schemas ./schemas
COPY producers ./producers
COPY streams ./streams
COPY inference_consumer ./inference_consumer
COPY api ./api
COPY storage ./storage
COPY stack ./stack
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
    && vitalstream --help > /dev/null


FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed, unprivileged UID so volume ownership is predictable across rebuilds. A new named volume copies the
# ownership of the folder it is mounted on, so the photo store's folder exists here, owned by that user.
RUN groupadd --gid 10001 vitalstream \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/vitalstream --shell /usr/sbin/nologin vitalstream \
    && install -d -o vitalstream -g vitalstream /app /var/lib/vitalstream/objects
COPY --from=build /opt/venv /opt/venv
# Faust keeps its local table state under the working directory, so it must be writable by the user.
WORKDIR /app
# Numeric, so runtimes can verify it is not root without reading /etc/passwd (e.g. runAsNonRoot).
USER 10001:10001

EXPOSE 8000
# docker-compose.yml health-checks each service on its own endpoint (API /healthz, workers /metrics).
HEALTHCHECK NONE
ENTRYPOINT ["vitalstream"]
CMD ["--help"]
