"""Bodies of the CLI commands that are more than a few lines; the Typer app stays thin."""
