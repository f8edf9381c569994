"""A database client on a host of its own (a network namespace), driven by the test line by line.

    ip netns exec NS python tests/netns_client.py      (the DSN in POOLCHECK_DSN)

It connects and prints {"ready": <its backend's pid>}; then for each line
"query" on stdin it runs SELECT 1 and prints {"ok": seconds} or
{"error": text, "after_s": seconds}. psycopg only, nothing of poolcheck.
"""

from __future__ import annotations

import json
import os
import sys
import time

import psycopg


def main() -> int:
    conn = psycopg.connect(os.environ["POOLCHECK_DSN"], autocommit=True)
    print(json.dumps({"ready": conn.info.backend_pid}), flush=True)
    for line in sys.stdin:
        if line.strip() != "query":
            continue
        started = time.monotonic()
        try:
            conn.execute("SELECT 1")
            print(json.dumps({"ok": round(time.monotonic() - started, 3)}), flush=True)
        except psycopg.OperationalError as exc:
            print(json.dumps({"error": str(exc).strip(), "after_s": round(time.monotonic() - started, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
