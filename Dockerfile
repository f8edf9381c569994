# Two images (see compose.yaml), each installing its dependencies at the releases
# constraints.txt pins, in a layer of its own before any code is copied: a code edit
# rebuilds only the layers after it.
#   app      the sample app alone: gunicorn, uvicorn workers, the pools (app/requirements.txt)
#   harness  poolcheck itself, for the collector and the Locust workers (pyproject.toml)
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/poolcheck
RUN useradd --system --no-create-home --shell /usr/sbin/nologin poolcheck

FROM base AS app
COPY constraints.txt app/requirements.txt ./
RUN pip install -c constraints.txt -r requirements.txt \
    && install -d -o poolcheck /tmp/poolcheck-metrics
# gunicorn imports the app from its working directory: nothing of the harness is installed.
COPY app ./app
USER poolcheck
EXPOSE 8000
CMD ["gunicorn", "-c", "app/gunicorn.conf.py", "app.main:create_app()"]

FROM base AS harness
COPY constraints.txt pyproject.toml ./
RUN python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt
COPY README.md LICENSE ./
COPY app ./app
COPY loadtests ./loadtests
# The dependencies are in place already: this installs poolcheck's own code only.
RUN pip install --no-deps .
USER poolcheck
EXPOSE 5557
CMD ["poolcheck", "--help"]
