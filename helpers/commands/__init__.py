"""The top floor: what a person runs. `python -m helpers COMMAND` (train, bench, seeds, summary, colab-links; each
a module here, cli.py what they share: flags, one-line errors, stops and exit codes) and `setup()`, each notebook's
first cell. Commands import the lesson and the machinery below them; nothing imports a command.
"""

from helpers.commands.notebook import setup  # the notebooks' first cell: short to type

__all__ = ["setup"]
