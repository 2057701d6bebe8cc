"""Figures for the notebooks and the README; each function returns a matplotlib Figure."""
import matplotlib.pyplot as plt
import numpy as np

from helpers import recipe


def class_grid(images, labels, classes, per_class=8):
    """The first `per_class` images of each class, one row per class."""
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 0.9, len(classes) * 0.95))
    for row, name in enumerate(classes):
        for col, index in enumerate(np.flatnonzero(labels == row)[:per_class]):
            axes[row, col].imshow(images[index])
        for ax in axes[row]:
            ax.set_xticks([]), ax.set_yticks([])
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout(pad=0.2)
    return fig


def class_counts(labels, classes, title):
    fig, ax = plt.subplots(figsize=(7, 2.5))
    ax.bar(classes, np.bincount(labels, minlength=len(classes)))
    ax.set_title(title), ax.set_ylabel("images"), ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def image_grid(images, titles=None, columns=8):
    """A grid of HWC images (uint8, or floats in [0, 1]), optionally titled."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.25), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(images[index])
            if titles is not None:
                ax.set_title(titles[index], fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def normalised_grid(images, mean, std, titles=None, columns=8):
    """A grid of normalised CHW tensors, shown as the network's input with the normalisation undone."""
    images = images.float().numpy().transpose(0, 2, 3, 1) * np.asarray(std) + np.asarray(mean)
    return image_grid(images.clip(0, 1), titles, columns)


def training_curves(history: dict, title=""):
    """Loss and accuracy per epoch, train and test, with the published 85.9% marked."""
    epochs = history["epochs"]
    x = [r["epoch"] for r in epochs]
    fig, (loss, accuracy) = plt.subplots(1, 2, figsize=(11, 3.8))
    loss.plot(x, [r["train_loss"] for r in epochs], label="train")
    loss.plot(x, [r["test_loss"] for r in epochs], label="test")
    loss.set_xlabel("epoch"), loss.set_ylabel("NLL loss"), loss.legend(), loss.set_title("loss")
    accuracy.plot(x, [100 * r["train_acc"] for r in epochs], label="train (augmented)")
    accuracy.plot(x, [100 * r["test_acc"] for r in epochs], label="test")
    accuracy.axhline(100 * recipe.ACCURACY, color="grey", linestyle="--", linewidth=1,
                     label=f"published {recipe.ACCURACY:.1%}")
    accuracy.set_xlabel("epoch"), accuracy.set_ylabel("accuracy (%)"), accuracy.legend(), accuracy.set_title("accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix_plot(matrix, classes):
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    shown = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, count, ha="center", va="center", fontsize=7,
                color="white" if count > matrix.max() / 2 else "black")
    fig.colorbar(shown)
    fig.tight_layout()
    return fig
