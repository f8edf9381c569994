"""gunicorn settings for the sample app; the harness overrides bind and workers on the command line."""

import os

worker_class = "uvicorn_worker.UvicornWorker"
bind = os.environ.get("APP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WORKERS", "4"))
# Workers get this long to close their pools on shutdown before SIGKILL.
graceful_timeout = 10
timeout = 30
keepalive = 5
max_requests = int(os.environ.get("MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("MAX_REQUESTS_JITTER", "0"))
# Import the app in the master before forking the workers (the worker-churn scenario).
preload_app = os.environ.get("PRELOAD_APP", "") == "1"
accesslog = None
loglevel = os.environ.get("LOG_LEVEL", "info")


def child_exit(server, worker):
    # A dead worker's "live" gauges are dropped, so /metrics shows live workers only.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
