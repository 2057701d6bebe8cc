"""A compact CNN on CIFAR-10, one module per lesson: config (the recipe), data, augment, pipelines, model,
receptive_field, training, schedule, analysis and plots. What keeps runs safe (run folders, checkpoints,
safe writes, the commands) stands behind them in helpers.machinery."""

import os
from pathlib import Path

# albumentations checks PyPI for a newer release on import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# The checkout this package lives in: its data/, runs/, notebooks/ and requirements.txt.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line that says what to do."""
