"""The figures: each draws what it is given."""

import numpy as np
import pytest

from helpers.augment import demo_transforms
from helpers.model import Net
from helpers.plots import compare_curves, confusion_matrix_plot, grad_cam_gallery, receptive_field_growth, show_images
from helpers.receptive_field import receptive_field_table
from runs import history


def test_growth_curve_plots_the_table():
    rows = receptive_field_table(Net())
    figure = receptive_field_growth(rows)
    field, jump = figure.axes
    assert list(field.lines[0].get_ydata()) == [row["r_out"] for row in rows]
    assert list(jump.lines[0].get_ydata()) == [row["j_out"] for row in rows]
    assert field.lines[1].get_ydata()[0] == 32  # the image size


def test_the_grad_cam_gallery_groups_right_and_wrong_and_shares_one_colour_scale():
    rng = np.random.default_rng(0)
    images, correct = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8), np.array([1, 0, 1, 1, 0, 0], bool)
    maps = {"4x4": rng.random((6, 32, 32)) * 5, "8x8": rng.random((6, 32, 32))}
    figure = grad_cam_gallery(images, [str(i) for i in range(6)], correct, maps, columns=3)
    grid = [ax for ax in figure.axes if ax.images]  # the colour bar's axes holds no image
    assert len(grid) == 12 and all(ax.images[1].get_array().max() == 1 for ax in grid)
    assert [ax.get_ylabel() for ax in grid[::3]] == ["right\n4x4", "right\n8x8", "wrong\n4x4", "wrong\n8x8"]
    assert [ax.get_title() for ax in grid[:3]] == ["0", "2", "3"] and [ax.get_title() for ax in grid[6:9]] == [
        "1",
        "4",
        "5",
    ]


def test_show_images_shows_each_transform_on_the_same_images(cifar):
    transforms = demo_transforms(cifar.mean)
    figure = show_images(transforms, cifar.train_images[:3])
    assert len(figure.axes) == 3 * len(transforms)
    assert [ax.get_title() for ax in figure.axes[: len(transforms)]] == list(transforms)  # first row
    original, flipped = figure.axes[0].images[0].get_array(), figure.axes[1].images[0].get_array()
    np.testing.assert_array_equal(np.asarray(flipped), np.asarray(original)[:, ::-1])


def test_the_confusion_matrix_figure_has_true_classes_down_and_predictions_across():
    matrix = np.array([[5, 1, 0], [7, 2, 0], [0, 0, 9]])  # 7 images of class "b" taken for "a"
    figure = confusion_matrix_plot(matrix, ["a", "b", "c"])
    ax = figure.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), matrix)  # row = true, column = predicted
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("true", "predicted")
    assert (
        [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"] == [t.get_text() for t in ax.get_xticklabels()]
    )
    counts = {(text.get_position()[1], text.get_position()[0]): text.get_text() for text in ax.texts}  # (row, col)
    assert counts[(1, 0)] == "7" and counts[(0, 1)] == "1"


def test_compared_runs_draw_their_test_accuracy_each():
    runs = {"a": history([0.5, 0.6]), "b": history([0.55, 0.65, 0.7])}
    ax = compare_curves(runs).axes[0]
    assert [line.get_label() for line in ax.lines] == ["a", "b", "published 85.9%"]
    assert list(ax.lines[1].get_ydata()) == pytest.approx([55, 65, 70]) and list(ax.lines[1].get_xdata()) == [1, 2, 3]
