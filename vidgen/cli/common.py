"""What every command shares: one Rich console, and turning known errors into one-line messages."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error that says what to do, and exit with `code`."""
    import typer
    from rich.markup import escape

    # escape: messages quote user input and patterns like [a-z0-9]; soft_wrap: one line stays one line
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)
