"""The command-line door into the pipeline."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.command()
def version() -> None:
    """Print the installed version."""
    from audiencesync import __version__

    typer.echo(__version__)


def main() -> None:
    app()
