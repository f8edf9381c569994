"""The `poolcheck` group that every command hangs off."""

from __future__ import annotations

import sys

import rich_click as click

from loadtests.cli.shared import verbosity


# Every option is also read from POOLCHECK_<COMMAND>_<OPTION> (POOLCHECK_RUN_MAX_SIZE=4), and --dsn from POOLCHECK_DSN.
@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "POOLCHECK"})
# Off a terminal (CI logs, pipes) rich assumes 80 columns, too few for the longest option names.
@click.rich_config(help_config=click.RichHelpConfiguration(width=None if sys.stdout.isatty() else 100, max_width=120))
@click.option("-v", "--verbose", is_flag=True, is_eager=True, expose_value=False, callback=verbosity,
              help="Log what the harness does.")
@click.version_option(package_name="poolcheck")
def cli() -> None:
    """poolcheck: do your app's connection pools fit your PostgreSQL server?"""
