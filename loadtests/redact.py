"""Passwords never leave the harness: DSNs are shown with `***`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

MASK = "***"

_URL_PASSWORD = re.compile(r"(?P<head>postgres(?:ql)?://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)")
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s]+)", re.IGNORECASE)


def redact_dsn(text: str) -> str:
    """Mask the password of every DSN in `text`, URL or key=value form."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


class Redactor:
    """Masks DSN passwords and every known secret in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, *secrets: str) -> None:
        self._secrets = sorted(set(self._secrets) | {s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = redact_dsn(text)
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def scrub_folder(self, folder: Path) -> int:
        """Rewrite every file below `folder` that holds a secret; return how many.

        Children (the server, gunicorn, Locust) write their own logs; this is
        the last line of defence for anything they echoed.
        """
        changed = 0
        for path in folder.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            try:
                text = path.read_text(encoding="utf-8", errors="surrogateescape")
            except OSError:
                continue
            clean = self(text)
            if clean != text:
                path.write_text(clean, encoding="utf-8", errors="surrogateescape")
                changed += 1
        return changed
