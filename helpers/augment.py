"""The published augmentation recipe on albumentations 2.x, and the transforms notebook 2 shows one by one
(with `plots.show_images`)."""

import copy
import random

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

from helpers.config import AUGMENT_P, CUTOUT_SIZE, ROTATE, SCALE, SHIFT, mean_fill


def augmentations(mean) -> list:
    """The published training augmentations, in their published order, each with p=0.5."""
    # Published: A.ShiftScaleRotate() with 1.x defaults, which drew one scale for both axes and
    # reflected at the border (BORDER_REFLECT_101). 2.x changed both defaults, so we spell them out;
    # 2.x also truncates the shift to whole pixels (-1, 0, +1 at 32 px).
    return [
        A.HorizontalFlip(p=AUGMENT_P),
        A.Affine(
            translate_percent=(-SHIFT, SHIFT),
            scale=SCALE,
            keep_ratio=True,
            rotate=ROTATE,
            border_mode=cv2.BORDER_REFLECT_101,
            p=AUGMENT_P,
        ),
        A.CoarseDropout(
            num_holes_range=(1, 1),
            hole_height_range=(CUTOUT_SIZE, CUTOUT_SIZE),
            hole_width_range=(CUTOUT_SIZE, CUTOUT_SIZE),
            fill=mean_fill(mean),
            p=AUGMENT_P,
        ),
        A.ToGray(p=AUGMENT_P),
    ]


def seed_draws(pipeline: A.Compose, seed: int) -> A.Compose:
    """Seed a pipeline's draws with one generator that all its transforms draw from in turn, so that each decides
    independently of the others; returns the pipeline.

    Not Compose(seed=...) nor set_random_seed: albumentations 2.0.8 gives each transform a generator of its own
    with that same seed, so HorizontalFlip and ToGray, one draw each per image, always decide alike.
    """
    pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return pipeline


def train_transform(mean, std, seed=None, save_applied_params=False) -> A.Compose:
    """Augment, normalise with the train mean/std, and return a CHW float tensor.

    A list (not the published set) fixes the order; `seed` makes the draws reproducible (`seed_draws`).
    """
    pipeline = A.Compose(
        [*augmentations(mean), A.Normalize(mean=mean, std=std), ToTensorV2()],
        save_applied_params=save_applied_params,
    )
    return pipeline if seed is None else seed_draws(pipeline, seed)


def test_transform(mean, std) -> A.Compose:
    """Normalise only."""
    return A.Compose([A.Normalize(mean=mean, std=std), ToTensorV2()])


def always(transform):
    """A copy of an albumentations transform that applies every time (p=1)."""
    shown = copy.deepcopy(transform)
    shown.p = 1
    return shown


def demo_transforms(mean) -> dict:
    """For `show_images`: each training augmentation alone (always applied), then the training pipeline.

    Last, the Vertical Flip that the published `show_images` call showed: training never used it.
    """
    flip, affine, cutout, gray = (always(transform) for transform in augmentations(mean))
    return {
        "Original": None,
        "Horizontal Flip": flip,
        "Shift/Scale/Rotate": affine,
        "Cut Out": cutout,
        "Gray Scale": gray,
        "Training pipeline\n(each p=0.5)": A.Compose(augmentations(mean)),
        "Vertical Flip\n(not in training)": A.VerticalFlip(p=1),
    }


def transformed(transform, images: np.ndarray, seed: int = 0) -> list:
    """Each uint8 HWC image through an albumentations `transform` (None: unchanged), its draws seeded by `seed`."""
    if transform is None:
        return list(images)
    pipeline = seed_draws(A.Compose([transform]), seed)
    return [pipeline(image=image)["image"] for image in images]
