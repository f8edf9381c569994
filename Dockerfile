# One image for the app, the harness and the Locust workers (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/poolcheck

# Dependencies first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
COPY app ./app
COPY loadtests ./loadtests
RUN pip install --no-cache-dir . \
    && useradd --system --no-create-home --shell /usr/sbin/nologin poolcheck \
    && install -d -o poolcheck /tmp/poolcheck-metrics

USER poolcheck
EXPOSE 8000 5557
CMD ["gunicorn", "-c", "app/gunicorn.conf.py", "app.main:create_app()"]
