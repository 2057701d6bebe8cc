"""The two training data pipelines, side by side, and `make_loaders` to pick one.

- albumentations (published): a DataLoader that augments image by image on the CPU.
- fast: the whole dataset on the training device as uint8, each chunk of an epoch augmented at once
  with `helpers.fast_augment`, drawing from the same distributions.
Both yield (normalised images, labels) batches and are reseeded by `set_seed` before every epoch.
"""

import math
import os

import numpy as np
import torch

from helpers.fast_augment import apply_augmentations, sample_params
from helpers.recipe import mean_fill

# Images augmented together by the fast pipeline. On a GPU a large chunk amortises kernel launches;
# on the CPU a smaller chunk keeps its float copies in the cache (docs/performance.md).
CHUNK_IMAGES = {"cuda": 8192, "cpu": 1024}


class AugmentedDataset(torch.utils.data.Dataset):
    """uint8 HWC images and labels, passed through an albumentations transform per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(image=self.images[index])["image"], int(self.labels[index])


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
            worker_init_fn=self._seed_worker,
        )

    def _seed_worker(self, worker_id):
        # Each worker gets a copy of the transform; without this they would all draw the same numbers.
        self.dataset.transform.set_random_seed(torch.initial_seed() % 2**32)

    def set_seed(self, seed: int):
        self.generator.manual_seed(seed)
        self.dataset.transform.set_random_seed(seed)

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


def device_loader(data, config, device: torch.device, train: bool) -> DeviceLoader:
    """The fast pipeline's loader of data's training images (augmented) or test images (only normalised)."""
    images, labels = (data.train_images, data.train_labels) if train else (data.test_images, data.test_labels)
    return DeviceLoader(images, labels, data.mean, data.std, config.batch_size, device, train, config.channels_last)


def make_loaders(data, config, device: torch.device):
    """(train, test) loaders for config.pipeline, 'fast' or 'albumentations' (settled by device.settle);
    the test images are only normalised."""
    if config.pipeline not in ("fast", "albumentations"):
        raise ValueError(f"pipeline {config.pipeline!r} is not settled: pass the config through device.settle")
    if config.pipeline == "fast":
        return device_loader(data, config, device, train=True), device_loader(data, config, device, train=False)
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
