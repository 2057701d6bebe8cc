"""The published augmentation recipe on albumentations 2.x, and `show_images` to look at transforms."""
import albumentations as A
import cv2
import matplotlib.pyplot as plt
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

# Published: A.ShiftScaleRotate() with 1.x defaults, which drew one scale for both axes and
# reflected at the border (BORDER_REFLECT_101). 2.x changed both defaults, so we spell them out.
SHIFT = 0.0625  # fraction of the image side; 2.x truncates it to whole pixels (-1, 0, +1 at 32 px)
SCALE = (0.9, 1.1)
ROTATE = (-45.0, 45.0)
CUTOUT_SIZE = 16
P = 0.5


def mean_fill(mean) -> tuple[int, ...]:
    """The dataset mean in the uint8 image's own scale.

    The published fill_value=0.473 was meant as the mean in [0, 1], but the images are uint8,
    so it filled with 0 (black). Filling with the mean makes a hole normalise to about zero.
    """
    return tuple(int(round(m * 255)) for m in mean)


def augmentations(mean) -> list:
    """The published training augmentations, in their published order, each with p=0.5."""
    return [
        A.HorizontalFlip(p=P),
        A.Affine(
            translate_percent=(-SHIFT, SHIFT),
            scale=SCALE,
            keep_ratio=True,
            rotate=ROTATE,
            border_mode=cv2.BORDER_REFLECT_101,
            p=P,
        ),
        A.CoarseDropout(
            num_holes_range=(1, 1),
            hole_height_range=(CUTOUT_SIZE, CUTOUT_SIZE),
            hole_width_range=(CUTOUT_SIZE, CUTOUT_SIZE),
            fill=mean_fill(mean),
            p=P,
        ),
        A.ToGray(p=P),
    ]


def train_transform(mean, std, seed=None, save_applied_params=False) -> A.Compose:
    """Augment, normalise with the train mean/std, and return a CHW float tensor.

    A list (not the published set) fixes the order; `seed` makes the draws reproducible.
    """
    return A.Compose(
        [*augmentations(mean), A.Normalize(mean=mean, std=std), ToTensorV2()],
        seed=seed,
        save_applied_params=save_applied_params,
    )


def test_transform(mean, std) -> A.Compose:
    """Normalise only."""
    return A.Compose([A.Normalize(mean=mean, std=std), ToTensorV2()])


def published_demo_transforms(mean) -> dict:
    """The transforms of the published `show_images` call, in the 2.x API, each always applied."""
    return {
        "Original Image": None,
        "Horizontal Flip": A.HorizontalFlip(p=1),
        "Vertical Flip": A.VerticalFlip(p=1),
        "Cut Out": A.CoarseDropout(
            num_holes_range=(1, 1),
            hole_height_range=(CUTOUT_SIZE, CUTOUT_SIZE),
            hole_width_range=(CUTOUT_SIZE, CUTOUT_SIZE),
            fill=mean_fill(mean),
            p=1,
        ),
        "Gray Scale": A.ToGray(p=1),
    }


class AugmentedDataset(torch.utils.data.Dataset):
    """uint8 HWC images and labels, passed through an albumentations transform per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: A.Compose):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(image=self.images[index])["image"], int(self.labels[index])


def show_images(transforms: dict, images: np.ndarray, seed: int = 0):
    """A figure with one row per sample image and one column per (title, transform); None = original."""
    rows, cols = len(images), len(transforms)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.8 * rows), squeeze=False)
    for col, (title, transform) in enumerate(transforms.items()):
        if transform is not None:
            transform = A.Compose([transform], seed=seed)
        for row, image in enumerate(images):
            shown = image if transform is None else transform(image=image)["image"]
            axes[row, col].imshow(shown)
            axes[row, col].axis("off")
        axes[0, col].set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
