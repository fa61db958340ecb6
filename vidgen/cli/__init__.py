"""`vidgen`: the command line. Each area registers its commands from its own module.

Commands that orchestrate (demo, run, serve, setup) import Prefect lazily inside the command, so
importing `vidgen` never imports Prefect.
"""

from __future__ import annotations

import typer

from vidgen.cli import channel_cmds, notion_cmds, production_cmds, webhook_cmds

app = typer.Typer(
    name="vidgen",
    help="Turn Notion entries into narrated videos and publish them, for many channels at once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
notion_cmds.register(app)
production_cmds.register(app)
channel_cmds.register(app)
webhook_cmds.register(app)
