"""``python -m atalaia``: the command line."""

from atalaia.cli import app

app(prog_name="atalaia")
