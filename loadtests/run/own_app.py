"""An app the harness did not start (`--target-url`): its password, and whether it answers."""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request

logger = logging.getLogger("poolcheck.target")


def url_password(url: str) -> str | None:
    """The password of `http://user:password@host/`, so it can be masked in the results."""
    return urllib.parse.urlsplit(url).password


def answers_http(url: str, *, timeout: float = 2.0) -> bool:
    """True once the app answers HTTP at all: any status will do, it only has to be serving."""
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
