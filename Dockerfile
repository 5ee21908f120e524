# promptlogic service image. Build: `docker build -t promptlogic .`
# It needs an external Postgres 15+ with the `vector` extension (see docker-compose.yml):
# set PROMPTLOGIC_DATABASE_URL and PROMPTLOGIC_SECRET_KEY, run `promptlogic migrate`, then serve.

# --- build: install the package and its dependencies into a virtual environment ---
FROM python:3.12-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
# Non-editable: the wheel carries the migrations (pyproject force-includes them).
RUN pip install .

# --- runtime: the virtual environment only, no sources, no build tools ---
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PROMPTLOGIC_HOST=0.0.0.0 \
    PROMPTLOGIC_HOME=/home/promptlogic/.promptlogic

RUN groupadd --system --gid 10001 promptlogic \
    && useradd --system --uid 10001 --gid promptlogic --create-home \
        --home-dir /home/promptlogic --shell /usr/sbin/nologin promptlogic

COPY --from=build /opt/venv /opt/venv

USER promptlogic
WORKDIR /home/promptlogic

EXPOSE 8000

# Liveness only (/healthz does not touch the database); /readyz reports database and schema.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["promptlogic", "serve", "--host", "0.0.0.0", "--port", "8000"]
