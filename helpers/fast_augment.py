"""The published augmentations as batched tensor operations, for the fast pipeline (`helpers.loaders`).

They draw from the same distributions as `helpers.augment` (tests/test_fast_augment.py checks that
they agree), but a whole batch at a time on the training device instead of image by image in Python.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from helpers.recipe import CUTOUT_SIZE, ROTATE, SCALE, SHIFT, P, mean_fill

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, as cv2's RGB2GRAY and A.ToGray


@dataclass
class AugmentParams:
    """Per-image random draws for a batch; a False flag means that transform is skipped."""

    flip: torch.Tensor  # (B,) bool
    affine: torch.Tensor  # (B,) bool
    angle: torch.Tensor  # (B,) degrees
    scale: torch.Tensor  # (B,)
    shift: torch.Tensor  # (B, 2) whole pixels, (x, y)
    cutout: torch.Tensor  # (B,) bool
    cutout_corner: torch.Tensor  # (B, 2) top-left (y, x) of the hole
    gray: torch.Tensor  # (B,) bool


def sample_params(n: int, height: int, width: int, generator: torch.Generator) -> AugmentParams:
    """Draw the published recipe's parameters for n images on the generator's device."""
    device = generator.device

    def uniform(low, high, *shape):
        return torch.rand(n, *shape, generator=generator, device=device) * (high - low) + low

    def coin():
        return torch.rand(n, generator=generator, device=device) < P

    # albumentations 2.x turns translate_percent into int(fraction * side): truncated whole pixels.
    sides = torch.tensor([width, height], device=device)
    return AugmentParams(
        flip=coin(),
        affine=coin(),
        angle=uniform(*ROTATE),
        scale=uniform(*SCALE),
        shift=torch.trunc(uniform(-SHIFT, SHIFT, 2) * sides),
        cutout=coin(),
        cutout_corner=torch.stack(
            [
                torch.randint(0, height - CUTOUT_SIZE + 1, (n,), generator=generator, device=device),
                torch.randint(0, width - CUTOUT_SIZE + 1, (n,), generator=generator, device=device),
            ],
            dim=1,
        ),
        gray=coin(),
    )


def affine_warp(images, angle, scale, shift):
    """Rotate by `angle` degrees and scale about the centre, then shift by whole pixels.

    Bilinear, with the border reflected about the edge pixels (cv2's BORDER_REFLECT_101):
    align_corners=True puts grid_sample's reflection axes on the edge pixel centres.
    """
    n, _, height, width = images.shape
    radians = torch.deg2rad(angle)
    cos, sin = torch.cos(radians) / scale, torch.sin(radians) / scale
    # Inverse of cv2's forward matrix scale * [[cos, sin], [-sin, cos]], in (x, y) order.
    inverse = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    half_sides = torch.tensor([(width - 1) / 2, (height - 1) / 2], device=images.device)
    offset = -(inverse @ (shift / half_sides).unsqueeze(-1))
    theta = torch.cat([inverse, offset], dim=-1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=True)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def apply_augmentations(images, params: AugmentParams, fill):
    """Flip, affine, cutout, grayscale (the published order) on float (B, 3, H, W) images in [0, 1]."""
    n, _, height, width = images.shape

    def where(flags, changed, unchanged):
        return torch.where(flags.view(n, 1, 1, 1), changed, unchanged)

    images = where(params.flip, images.flip(-1), images)
    images = where(params.affine, affine_warp(images, params.angle, params.scale, params.shift), images)
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, width)
    top, left = params.cutout_corner[:, 0].view(n, 1, 1), params.cutout_corner[:, 1].view(n, 1, 1)
    hole = (rows >= top) & (rows < top + CUTOUT_SIZE) & (cols >= left) & (cols < left + CUTOUT_SIZE)
    hole = (hole & params.cutout.view(n, 1, 1)).unsqueeze(1)
    images = torch.where(hole, fill.view(1, 3, 1, 1), images)
    weights = torch.tensor(GRAY_WEIGHTS, device=images.device).view(1, 3, 1, 1)
    gray = (images * weights).sum(1, keepdim=True).expand_as(images)
    return where(params.gray, gray, images)


def augment_images(images: np.ndarray, mean, seed: int) -> np.ndarray:
    """The fast pipeline's augmentations of uint8 HWC images, as uint8 HWC images (to look at them)."""
    batch = torch.tensor(images).permute(0, 3, 1, 2).float() / 255
    params = sample_params(len(batch), *batch.shape[-2:], torch.Generator().manual_seed(seed))
    fill = torch.tensor(mean_fill(mean), dtype=torch.float32) / 255
    augmented = apply_augmentations(batch, params, fill)
    return (augmented * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
