# Production image: API (`smm-panel serve`) or worker (`smm-panel worker`).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
# The plain install: no `embedded` extra (the image runs against external PostgreSQL/Redis).
# The migrations travel inside the package (app/migrations): nothing else is copied.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 panel
COPY --from=build /opt/venv /opt/venv
WORKDIR /home/panel
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8000
USER panel
EXPOSE 8000
# The API's check. The worker listens on no HTTP port of the API: docker-compose.yml gives
# it its own check (its metrics endpoint) instead of this one.
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["smm-panel", "serve"]
