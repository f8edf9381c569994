"""The cloud-proxy emulator: a TCP relay that cuts connections idle too long.

A run puts it between the app and the server (or PgBouncer) to answer "my app
sits behind a proxy that cuts idle connections after N seconds: do my pools
survive?". `relay.py` is the relay, `events.py` the `proxy_events.jsonl` it
writes, `__main__.py` its process (`python -m loadtests.proxy`).
"""
