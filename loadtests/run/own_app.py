"""An app the harness did not start (`--target-url`): what it may be, and when it answers."""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

logger = logging.getLogger("poolcheck.target")


def check_target_url(url: str) -> str:
    """The base URL without a trailing slash; ValueError says what is wrong."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    if parts.query or parts.fragment:
        raise ValueError("give the app's base URL, without a query or fragment")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError("the URL's port is not a number from 1 to 65535") from None
    return url.strip().rstrip("/")


def url_password(url: str) -> str | None:
    """The password of `http://user:password@host/`, so it can be masked in the results."""
    return urllib.parse.urlsplit(url).password


def check_locustfile(path: Path) -> Path:
    if not path.is_file():
        raise ValueError("no such file")
    if path.suffix != ".py":
        raise ValueError("expected a Python file (.py)")
    return path.resolve()


def answers_http(url: str, *, timeout: float = 2.0) -> bool:
    """True once the app answers HTTP at all: any status will do, it only has to be serving."""
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
