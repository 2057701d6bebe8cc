"""The two training data pipelines, side by side, and `make_loaders` to pick one.

- albumentations (published): a DataLoader that augments image by image on the CPU (helpers.augment).
- fast: the whole dataset on the training device as uint8, each chunk of an epoch augmented at once by
  the batched tensor operations below, drawing from the same distributions as helpers.augment
  (tests/test_pipelines.py checks that they agree).
Both yield (normalised images, labels) batches and are reseeded by `set_seed` before every epoch.
"""

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from helpers.config import AUGMENT_P, CUTOUT_SIZE, ROTATE, SCALE, SHIFT, Settled, mean_fill

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
        return torch.rand(n, generator=generator, device=device) < AUGMENT_P

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


def pipeline_draws(images: np.ndarray, mean, draws=3) -> dict:
    """`draws` augmentations of each uint8 HWC image by each training pipeline, seeded 0, 1, ...:
    {"albumentations": [images, ...], "fast": [images, ...]}, for `plots.draws_grid`."""
    import albumentations as A

    from helpers.augment import augmentations, seed_draws  # albumentations: seconds to import, only here

    def albumentations_draw(seed):
        pipeline = seed_draws(A.Compose(augmentations(mean)), seed)
        return np.stack([pipeline(image=image)["image"] for image in images])

    return {
        "albumentations": [albumentations_draw(seed) for seed in range(draws)],
        "fast": [augment_images(images, mean, seed) for seed in range(draws)],
    }


# Images augmented together by the fast pipeline. On a GPU a large chunk amortises kernel launches;
# on the CPU a smaller chunk keeps its float copies in the cache (docs/performance.md).
CHUNK_IMAGES = {"cuda": 8192, "cpu": 1024}


class AugmentedDataset(torch.utils.data.Dataset):
    """uint8 HWC images and labels, passed through an albumentations transform per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform
        self.seed = 0  # the epoch's; set_seed sets it

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(image=self.images[index])["image"], int(self.labels[index])

    def __getitems__(self, indices):
        """A batch (the DataLoader asks for whole batches), its draws seeded by the epoch's seed and the
        batch's images: not by which worker makes it, or how many there are, so a run resumed with another
        --num-workers (or on another device's default) repeats the uninterrupted one."""
        from helpers.augment import seed_draws  # imported by make_loaders already

        seed_draws(self.transform, int(np.random.SeedSequence([self.seed, *indices]).generate_state(1)[0]))
        return [self[index] for index in indices]


class AlbumentationsLoader:
    """The published pipeline: a DataLoader over per-image albumentations transforms."""

    def __init__(self, images, labels, transform, batch_size, shuffle, num_workers, pin_memory):
        self.dataset = AugmentedDataset(images, labels, transform)
        self.generator = torch.Generator()
        self.loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=self.generator,
            num_workers=num_workers,
            pin_memory=pin_memory,
        )

    def set_seed(self, seed: int):
        """Seed the shuffle and augmentation draws of the next epoch."""
        self.generator.manual_seed(seed)
        self.dataset.seed = seed

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


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


def device_loader(data, run: Settled, train: bool) -> DeviceLoader:
    """The fast pipeline's loader of data's training images (augmented) or test images (only normalised)."""
    images, labels = (data.train_images, data.train_labels) if train else (data.test_images, data.test_labels)
    config = run.config
    return DeviceLoader(images, labels, data.mean, data.std, config.batch_size, run.device, train, config.channels_last)


def make_loaders(data, run: Settled):
    """(train, test) loaders for the run's pipeline, 'fast' or 'albumentations'; the test images are only
    normalised."""
    config, device = run
    if config.pipeline == "fast":
        return device_loader(data, run, train=True), device_loader(data, run, train=False)
    from helpers.augment import test_transform, train_transform  # albumentations: seconds to import, only here

    workers = config.num_workers
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
    common = dict(batch_size=config.batch_size, num_workers=workers, pin_memory=device.type == "cuda")
    train = AlbumentationsLoader(
        data.train_images, data.train_labels, train_transform(data.mean, data.std), shuffle=True, **common
    )
    test = AlbumentationsLoader(
        data.test_images, data.test_labels, test_transform(data.mean, data.std), shuffle=False, **common
    )
    return train, test
