"""The watchkeeper command line (Typer + Rich)."""
