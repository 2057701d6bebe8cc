"""Figures for the notebooks and the README; each function returns a matplotlib Figure."""

import itertools
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from helpers import PROJECT_ROOT
from helpers.config import ACCURACY

# Where `save_figure` writes: $FIGURES_DIR, else the project's runs/figures/ (ignored by git). `make
# notebooks` sets img/, the figures the README shows; a learner's run or a test leaves those alone.
FIGURES_ENV = "FIGURES_DIR"
DEFAULT_FIGURES = PROJECT_ROOT / "runs" / "figures"


def save_figure(fig, name: str):
    """Write `fig` as NAME.png into the figures folder, the same bytes for the same figure (no
    software or date stamp). The notebook shows the figure itself."""
    folder = Path(os.environ.get(FIGURES_ENV) or DEFAULT_FIGURES)
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.png", dpi=100, bbox_inches="tight", metadata={"Software": None})


def class_grid(images, labels, classes, per_class=8, gap=2):
    """The first `per_class` images of each class, one row per class, drawn as one picture (one
    axes, not one per image: a tenth of the drawing time)."""
    size = images.shape[1]
    step = size + gap
    sheet = np.full((len(classes) * step - gap, per_class * step - gap, 3), 255, dtype=np.uint8)
    for row in range(len(classes)):
        for col, index in enumerate(np.flatnonzero(labels == row)[:per_class]):
            sheet[row * step : row * step + size, col * step : col * step + size] = images[index]
    fig, ax = plt.subplots(figsize=(per_class * 0.9, len(classes) * 0.95))
    ax.imshow(sheet, interpolation="nearest")  # sharp pixels; also a third of the PNG size
    ax.set_xticks([])
    ax.set_yticks([row * step + size / 2 for row in range(len(classes))], classes, fontsize=9)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.tight_layout(pad=0.2)
    return fig


def class_counts(labels, classes, title):
    fig, ax = plt.subplots(figsize=(7, 2.5))
    ax.bar(classes, np.bincount(labels, minlength=len(classes)))
    ax.set_title(title), ax.set_ylabel("images"), ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def show_images(transforms: dict, images, seed: int = 0):
    """A figure with one row per sample image and one column per (title, albumentations transform; None = the
    original), each column's draws seeded by `seed`."""
    from helpers.augment import transformed  # albumentations: seconds to import, only for this figure

    rows, cols = len(images), len(transforms)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.8 * rows), squeeze=False)
    for col, (title, transform) in enumerate(transforms.items()):
        for row, shown in enumerate(transformed(transform, images, seed)):
            axes[row, col].imshow(shown)
            axes[row, col].axis("off")
        axes[0, col].set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def image_grid(images, titles=None, columns=8, overlays=None):
    """A grid of HWC images (uint8, or floats in [0, 1]), optionally titled, optionally with an (H, W)
    map laid over each (for example a class-activation map)."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.45), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(images[index])
            if overlays is not None:
                ax.imshow(overlays[index], cmap="jet", alpha=0.45, vmin=0)
            if titles is not None:
                ax.set_title(titles[index], fontsize=7 if overlays is not None else 8)
    fig.tight_layout(pad=0.3)
    return fig


def grad_cam_gallery(images, titles, correct, maps: dict, columns=8):
    """Grad-CAM over images: the right predictions in one group of rows (green frames), the wrong in
    another (red), one row per layer. maps: {row label: (N, H, W) maps}; each map is shown divided by
    its maximum, so that one colour bar reads them all."""
    correct = np.asarray(correct, dtype=bool)
    groups = [("right", "tab:green", np.flatnonzero(correct)[:columns]),
              ("wrong", "tab:red", np.flatnonzero(~correct)[:columns])]  # fmt: skip
    rows = len(groups) * len(maps)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.25, rows * 1.45), squeeze=False, layout="constrained")
    shown = None
    for row, ((group, colour, indices), (label, layer_maps)) in enumerate(itertools.product(groups, maps.items())):
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([]), ax.set_yticks([])
            if col >= len(indices):
                ax.axis("off")
                continue
            heat = layer_maps[indices[col]]
            ax.imshow(images[indices[col]])
            shown = ax.imshow(heat / heat.max() if heat.max() > 0 else heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour), spine.set_linewidth(2)
            if row % len(maps) == 0:
                ax.set_title(titles[indices[col]], fontsize=7)
        axes[row, 0].set_ylabel(f"{group}\n{label}", fontsize=8)
    fig.colorbar(shown, ax=axes, fraction=0.02, label="Grad-CAM / its maximum")
    return fig


def draws_grid(images, draws: dict):
    """Each image (a row), then its draws from each pipeline: draws = {pipeline: [images, ...]}."""
    columns = [images] + [draw for pipeline_draws in draws.values() for draw in pipeline_draws]
    titles = ["original"] + [name for name, pipeline_draws in draws.items() for _ in pipeline_draws]
    grid = np.stack(columns, axis=1).reshape(-1, *np.shape(images)[1:])  # row by row
    return image_grid(grid, titles + [""] * (len(grid) - len(titles)), columns=len(columns))


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
    accuracy.axhline(100 * ACCURACY, color="grey", linestyle="--", linewidth=1, label=f"published {ACCURACY:.1%}")
    accuracy.set_xlabel("epoch"), accuracy.set_ylabel("accuracy (%)"), accuracy.legend(), accuracy.set_title("accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare_curves(named: dict):
    """Test accuracy per epoch of each run ({name: history}), with the published 85.9% marked."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, history in named.items():
        ax.plot([r["epoch"] for r in history["epochs"]], [100 * r["test_acc"] for r in history["epochs"]], label=name)
    ax.axhline(100 * ACCURACY, color="grey", linestyle="--", linewidth=1, label=f"published {ACCURACY:.1%}")
    ax.set_xlabel("epoch"), ax.set_ylabel("test accuracy (%)"), ax.legend(), ax.set_title("test accuracy")
    fig.tight_layout()
    return fig


def schedule_plot(schedule: dict, history=None):
    """The one-cycle learning rate and momentum over every step (schedule.one_cycle); with a run's
    history, the learning rate it recorded at the end of each epoch, on the same curve."""
    steps = np.arange(len(schedule["lr"]))
    epochs = len(steps) // schedule["steps_per_epoch"]
    fig, (lr, momentum) = plt.subplots(1, 2, figsize=(11, 3.4))
    lr.plot(steps, schedule["lr"], label="OneCycleLR, every step")
    momentum.plot(steps, schedule["momentum"], color="tab:orange")
    if history is not None:
        recorded = [(r["epoch"] * schedule["steps_per_epoch"], r["lr"]) for r in history["epochs"]]
        lr.plot(
            *zip(*recorded, strict=True), "o", color="tab:red", markersize=4, label="recorded by the run, each epoch"
        )
    lr.set_title(f"learning rate: peak {schedule['lr'].max():.3g}")
    lr.set_ylabel("learning rate")
    lr.legend(fontsize=8)
    momentum.set_title("momentum (cycled against the learning rate)")
    momentum.set_ylabel("momentum")
    for ax in (lr, momentum):
        ax.set_xlabel(f"step ({epochs} epoch(s) of {schedule['steps_per_epoch']} steps)")
    fig.tight_layout()
    return fig


def lr_range_plot(test: dict, chosen: float):
    """The smoothed loss of an LR range test (schedule.lr_range_test) against the learning rate, with its
    suggestion and the learning rate chosen, and where the test ran."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(test["lr"], test["loss"], label=f"training loss, smoothed ({len(test['lr'])} steps)")
    ax.axvline(test["suggestion"], color="tab:red", linestyle="--", label=f"steepest descent: {test['suggestion']:.3g}")
    ax.axvline(chosen, color="tab:green", label=f"published max_lr: {chosen:g}")
    ax.set_xscale("log"), ax.set_xlabel("learning rate"), ax.set_ylabel("loss"), ax.legend(fontsize=8)
    ax.set_title(f"LR range test on {test['ran_on']}", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_matrix_plot(matrix, classes):
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    shown = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(
            col,
            row,
            count,
            ha="center",
            va="center",
            fontsize=7,
            color="white" if count > matrix.max() / 2 else "black",
        )
    fig.colorbar(shown)
    fig.tight_layout()
    return fig


def receptive_field_growth(rows: list[dict], image_size=32):
    """r_out per layer with the jump j as a second series; the image size, and the layers whose stride changes j."""
    fig, field = plt.subplots(figsize=(10, 4))
    x = range(len(rows))
    field.plot(x, [row["r_out"] for row in rows], "o-", label="receptive field r_out (pixels)")
    field.axhline(image_size, color="grey", linestyle="--", linewidth=1, label=f"image size ({image_size})")
    for index, row in enumerate(rows):
        if row["stride"] > 1:
            field.axvline(index, color="tab:red", alpha=0.25, linewidth=6)
    field.plot([], [], color="tab:red", alpha=0.25, linewidth=6, label="stride s > 1: the jump is multiplied by s")
    jump = field.twinx()
    jump.step(x, [row["j_out"] for row in rows], where="mid", color="tab:orange", label="jump j_out (pixels)")
    jump.set_ylabel("jump j_out"), field.set_ylabel("r_out (pixels)")
    field.set_xticks(list(x), [row["module"] for row in rows], rotation=60, ha="right")
    handles = [*field.get_legend_handles_labels()[0], *jump.get_legend_handles_labels()[0]]
    field.legend(handles=handles, loc="upper left", fontsize=8)
    field.set_title("How the receptive field grows through the network")
    fig.tight_layout()
    return fig


def field_box(rows, cols=None, **style):
    """An unfilled box over the pixels from rows[0] to rows[1] and cols[0] to cols[1] (a unit's field;
    cols default to rows: a square)."""
    from matplotlib.patches import Rectangle

    (top, bottom), (left, right) = rows, cols or rows
    return Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False, **style)


def _image_on_padding(ax, image, rows, cols, scale):
    """Draw `image` enlarged `scale` times on a grey frame, the zero padding, wide enough for the field
    rows x cols ((first, last) pixel along y and along x), hatched where that field lies on the padding.
    Returns the image's extent."""
    size = image.shape[0]
    ax.set_facecolor("0.85")
    # The hatched box lies under the image, so its hatching shows only where the field is padding.
    ax.add_patch(field_box(rows, cols, edgecolor="red", hatch="//", alpha=0.5, zorder=1))
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)
    ax.imshow(np.kron(image, np.ones((scale, scale, 1), dtype=image.dtype)), extent=extent, zorder=2)
    margin = max(0.0, -rows[0], -cols[0], rows[1] - (size - 1), cols[1] - (size - 1)) + 1
    ax.set_xlim(-margin - 0.5, size - 0.5 + margin), ax.set_ylim(size - 0.5 + margin, -margin - 0.5)
    return extent


def receptive_field_boxes(image, boxes: dict, scale=8):
    """An image upscaled `scale` times with, per title, the theoretical field of a centre unit as a box.

    boxes: {title: (first, last) pixel along each axis}; the part outside the image is padding, drawn
    on a grey frame around it and hatched.
    """
    from matplotlib.patches import Patch

    size = image.shape[0]
    fig, axes = plt.subplots(1, len(boxes), figsize=(3.6 * len(boxes), 3.8), squeeze=False)
    for ax, (title, (first, last)) in zip(axes[0], boxes.items(), strict=True):
        _image_on_padding(ax, image, (first, last), (first, last), scale)
        low, high = max(first, 0), min(last, size - 1)
        ax.add_patch(field_box((low, high), edgecolor="red", linewidth=2, zorder=3))
        ax.set_title(title, fontsize=9), ax.set_xticks([]), ax.set_yticks([])
    legend = [
        Patch(fill=False, edgecolor="red", linewidth=2, label="the field on the image"),
        Patch(fill=False, edgecolor="red", hatch="//", alpha=0.5, label="the field on the zero padding (grey)"),
    ]
    fig.legend(handles=legend, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def unit_field_view(image, box, heatmap, centre, titles: tuple[str, str, str], scale=8):
    """One unit on one image, side by side: the image at full strength with the unit's theoretical field,
    box = ((first, last) along y, (first, last) along x), hatched where it lies on the zero padding (grey); and
    its effective field there (its input gradient, divided by its maximum) with the same box. `centre` (y, x)
    is where the unit's field is centred, marked on both. titles: (figure, image panel, gradient panel)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 4.4))
    extent = _image_on_padding(left, image, *box, scale)
    _image_on_padding(right, np.zeros_like(image), *box, scale)  # the same frame, the image left out
    peak = heatmap.max()  # 0 for a unit that sees no pixel
    shown = right.imshow(heatmap / peak if peak > 0 else heatmap, cmap="magma", vmin=0, vmax=1, extent=extent, zorder=3)
    for ax, title in zip((left, right), titles[1:], strict=True):
        ax.add_patch(field_box(*box, edgecolor="red", linewidth=2, zorder=4, label="theoretical field"))
        ax.plot(centre[1], centre[0], "+", color="cyan", markersize=14, markeredgewidth=2.5, zorder=5,
                label="the unit's centre")  # fmt: skip
        ax.set_title(title, fontsize=9), ax.set_xticks([]), ax.set_yticks([])
    left.legend(fontsize=7, loc="lower right", facecolor="0.25", labelcolor="white", framealpha=0.9)
    fig.colorbar(shown, ax=right, fraction=0.046, label="|input gradient| (max = 1)")
    fig.suptitle(titles[0], fontsize=10)
    fig.tight_layout()
    return fig


def effective_field_maps(panels: list[dict], columns=2):
    """Effective receptive fields, one panel per dict(title, heatmap, field, centre, radii).

    heatmap: (H, W) mean |input gradient| of one unit; field: its theoretical (first, last) pixel along
    each axis, outlined even where it reaches past the image (padding, grey); centre: (y, x) of that
    unit's field; radii: {fraction: radius} holding that share of the gradient mass, drawn as circles.
    """
    from matplotlib.patches import Circle

    rows = int(np.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 4.3 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        heatmap, (first, last), (y, x) = panel["heatmap"], panel["field"], panel["centre"]
        height, width = heatmap.shape
        low, high = min(first, 0) - 1.5, max(last, width - 1) + 1.5
        ax.set_facecolor("0.8")  # around the image: the padding
        extent = (-0.5, width - 0.5, height - 0.5, -0.5)
        shown = ax.imshow(heatmap / heatmap.max(), cmap="magma", vmin=0, vmax=1, extent=extent)
        ax.add_patch(
            field_box(
                (first, last), edgecolor="tab:cyan", linewidth=2, label=f"theoretical field: {last - first + 1:.0f} px"
            )
        )
        for fraction, style in ((0.5, "-"), (0.95, "--")):
            radius = panel["radii"][fraction]
            circle = ax.add_patch(
                Circle(
                    (x, y),
                    radius,
                    fill=False,
                    edgecolor="white",
                    linestyle=style,
                    linewidth=1.5,
                    label=f"{fraction:.0%} of the gradient: r = {radius:.1f} px",
                )
            )
            # Clipped to the image, where the gradient is.
            circle.set_clip_path(field_box((0, height - 1), (0, width - 1), transform=ax.transData))
        ax.set_xlim(low, high), ax.set_ylim(high, low)
        # A dark legend: the circles are white, to stand out on the map.
        ax.set_title(panel["title"], fontsize=10)
        ax.legend(fontsize=7, loc="lower right", facecolor="0.25", labelcolor="white", framealpha=0.9)
        fig.colorbar(shown, ax=ax, fraction=0.046, label="mean |gradient| (max = 1)")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig
