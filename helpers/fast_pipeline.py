"""The published augmentations as batched tensor operations on the training device.

The albumentations pipeline spends most of an epoch in per-image Python. Here the whole dataset
lives on the device as uint8 and each chunk of an epoch is augmented at once, drawing from the
same distributions as `helpers.augment` (tests/test_fast_pipeline.py checks that they agree).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from helpers.augment import CUTOUT_SIZE, P, ROTATE, SCALE, SHIFT, mean_fill

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, as cv2's RGB2GRAY and A.ToGray
# Images augmented together. On a GPU a large chunk amortises kernel launches; on the CPU a chunk
# whose float copies (12 MB) stay in cache is 4x faster per image than one of 8192 (measured).
CHUNK_IMAGES = {"cuda": 8192, "cpu": 1024}


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


class DeviceLoader:
    """Batches of normalised images from a uint8 copy of the data on `device`; augmented if `train`."""

    def __init__(self, images, labels, mean, std, batch_size, device, train, channels_last=True):
        device = torch.device(device)
        self.images = torch.tensor(images, device=device).permute(0, 3, 1, 2).contiguous()
        self.labels = torch.tensor(labels, device=device)
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.fill = torch.tensor(mean_fill(mean), device=device, dtype=torch.float32) / 255
        self.batch_size, self.train = batch_size, train
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.chunk = batch_size * max(1, CHUNK_IMAGES[device.type] // batch_size)  # whole batches per chunk
        self.generator = torch.Generator(device=device)

    def set_seed(self, seed: int):
        """Seed the shuffle and augmentation draws of the next epoch."""
        self.generator.manual_seed(seed)

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        count = len(self.labels)
        if self.train:
            order = torch.randperm(count, generator=self.generator, device=self.labels.device)
        else:
            order = torch.arange(count, device=self.labels.device)
        for start in range(0, count, self.chunk):
            index = order[start : start + self.chunk]
            images = self.images[index].float().div_(255)
            if self.train:
                params = sample_params(len(index), *images.shape[-2:], self.generator)
                images = apply_augmentations(images, params, self.fill)
            images = ((images - self.mean) / self.std).contiguous(memory_format=self.memory_format)
            labels = self.labels[index]
            for first in range(0, len(index), self.batch_size):
                yield images[first : first + self.batch_size], labels[first : first + self.batch_size]
