# gitstore: the same service `make serve` runs, with its data on a volume. It starts empty (no
# sample content: the volume is for real data; GITSTORE_SAMPLES=1 for a demo) and refuses to
# start until a token exists: see the README's Docker section for the first one.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 gitstore \
 && mkdir /data && chown gitstore:gitstore /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gitstore ./gitstore
COPY api ./api
COPY bench ./bench
COPY sample_repos ./sample_repos
RUN pip install --no-cache-dir .

USER gitstore
ENV GITSTORE_DATA=/data \
    GITSTORE_SAMPLES=0 \
    GITSTORE_SAMPLES_DIR=/app/sample_repos \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"

# Through `gitstore serve`: it will not listen beyond loopback without credentials, and believes
# forwarding headers only from GITSTORE_TRUSTED_PROXIES.
CMD ["gitstore", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
