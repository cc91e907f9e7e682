# One image for every process of the service; docker-compose.yml picks the command per container:
#   mlpipe api | mlpipe worker | mlpipe scheduler | mlpipe migrate
# The dashboard's chart library from npm (pinned in app/dashboard/package-lock.json); only its one file is kept.
FROM node:20-slim AS dashboard-assets
WORKDIR /build
COPY app/dashboard/package.json app/dashboard/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODEL_STORE_DIR=/data/model_store

WORKDIR /app

# The CPU build of torch, pinned as in pyproject.toml (2.13.0+cpu satisfies `torch==2.13.0`); the other
# wheels (TA-Lib, xgboost) bundle their native libraries, so the slim base needs no system packages.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# Dependencies in their own layer: a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The project itself. /app stays the working directory: `mlpipe migrate` finds alembic.ini and
# migrations/ here, and the cycle's model definitions live in the tree too.
COPY . .
COPY --from=dashboard-assets /build/node_modules/plotly.js-basic-dist-min/plotly-basic.min.js \
     app/dashboard/static/vendor/plotly-basic.min.js
RUN pip install --no-deps . \
    && useradd --create-home --uid 1000 mlpipe \
    && mkdir -p /data/model_store \
    && chown -R mlpipe /data

USER mlpipe
VOLUME ["/data/model_store"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

CMD ["mlpipe", "api", "--host", "0.0.0.0", "--port", "8000"]
