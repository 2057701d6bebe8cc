"""A compact CNN on CIFAR-10 on three floors, every import pointing down:

- helpers.commands: what a person runs (`python -m helpers COMMAND`, and `setup()`, each notebook's first cell);
- the lesson, this package's own modules, one per thing the notebooks teach: config (the recipe), data, augment,
  pipelines, model, receptive_field, training (the step in view), timing, schedule, analysis, plots and exercises;
- helpers.machinery: what keeps runs safe (run folders, checkpoints, safe writes, the download, the hardware).

This module holds only what every floor shares: UserError and the project's root."""

import os
import sys
from pathlib import Path

# albumentations checks PyPI for a newer release on import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# The checkout this package lives in: its data/, runs/, notebooks/ and requirements.txt.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line that says what to do."""


def _refuse_to_run_a_module():
    """`python -m helpers.analysis` would import torch for seconds and then print nothing: the one thing
    to run is `python -m helpers COMMAND` (and the maintainer's digests), so say that at once."""
    argv = getattr(sys, "orig_argv", [])
    if sys.argv[:1] != ["-m"] or "-m" not in argv[:-1]:  # sys.argv is ["-m"] only while -m finds its module
        return
    module = argv[argv.index("-m") + 1]
    if module.startswith("helpers.") and module not in ("helpers.__main__", "helpers.machinery.download"):
        message = f"error: {module} is a module, not a command: run python -m helpers --help for the commands"
        print(message, file=sys.stderr)
        sys.exit(2)


_refuse_to_run_a_module()
