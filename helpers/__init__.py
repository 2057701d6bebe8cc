"""Helpers for the compact CIFAR-10 CNN: data, augmentation, model, training, analysis."""

import os

# albumentations checks PyPI for a newer release on import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line that says what to do."""
