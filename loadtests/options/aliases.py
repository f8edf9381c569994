"""An option that also answers to an older name, which `--help` no longer shows."""

from __future__ import annotations

from typing import Any

import click
from rich_click import RichOption


class AliasedOption(RichOption):
    """`old_names` parse as the option itself (same value, same checks) but are left out of the help."""

    def __init__(self, *args: Any, old_names: tuple[str, ...] = (), **attrs: Any) -> None:
        super().__init__(*args, **attrs)
        self.old_names = old_names

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        if self.old_names:
            shown, self.opts = self.opts, list(self.old_names)
            try:
                super().add_to_parser(parser, ctx)
            finally:
                self.opts = shown
