# syntax=docker/dockerfile:1
# Build stage: resolve the locked dependencies into a virtualenv with uv.
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /srv
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY app ./app
COPY migrations ./migrations
COPY alembic.ini ./
# The recorded examples the served OpenAPI document carries (the recording tool stays out).
COPY openapi/examples.json ./openapi/
RUN uv sync --frozen --no-dev

# Runtime stage: only the virtualenv and the code, run as an unprivileged user.
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 ladder && useradd --system --uid 10001 --gid ladder --home /srv ladder
WORKDIR /srv
COPY --from=build --chown=10001:10001 /srv /srv
ENV PATH="/srv/.venv/bin:$PATH" PYTHONUNBUFFERED=1 ENVIRONMENT=production PORT=8000
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
# Migrations first, then the server; exec so uvicorn receives SIGTERM and drains requests.
CMD ["sh", "-c", "ladder migrate && exec ladder serve --workers ${WEB_CONCURRENCY:-2}"]
