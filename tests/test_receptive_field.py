import random

import numpy as np
import pytest
import torch
from torch import nn

from helpers.analysis import grad_cam, model_input, trained_model
from helpers.explorer import explorer, nearest_unit, unit_view
from helpers.model import Net
from helpers.plots import grad_cam_gallery, receptive_field_growth
from helpers.receptive_field import (
    FIELDS,
    _all_ones_linear_copy,
    effective_field,
    effective_receptive_field,
    empirical_receptive_field,
    receptive_field_table,
    support_outside,
    to_markdown,
    unit_field,
)

REFERENCE = "results/seed1-100ep"

# (kernel, stride, padding, dilation, n_out, j_out, r_out) for Net, worked out by hand.
NET_BY_HAND = [
    (3, 1, 1, 1, 32, 1, 3),
    (3, 1, 1, 1, 32, 1, 5),
    (3, 1, 0, 1, 30, 1, 7),
    (1, 2, 1, 1, 16, 2, 7),  # the 1x1 stride-2 "pool"
    (1, 1, 0, 1, 16, 2, 7),
    (3, 1, 1, 1, 16, 2, 11),
    (1, 1, 0, 1, 16, 2, 11),
    (3, 1, 2, 2, 16, 2, 19),  # dilated: k_eff 5 (the published table says 15)
    (3, 2, 1, 1, 8, 4, 23),
    (3, 1, 1, 1, 8, 4, 31),
    (3, 1, 1, 1, 8, 4, 39),
    (1, 1, 0, 1, 8, 4, 39),
    (3, 2, 1, 1, 4, 8, 47),
    (3, 1, 1, 1, 4, 8, 63),
    (3, 1, 1, 1, 4, 8, 79),
    (4, 4, 0, 1, 1, 32, 103),  # the 4x4 average pool
]


def test_net_table_matches_hand_computation():
    rows = receptive_field_table(Net())
    assert [
        (r["kernel"], r["stride"], r["padding"], r["dilation"], r["n_out"], r["j_out"], r["r_out"]) for r in rows
    ] == NET_BY_HAND
    for previous, row in zip(rows, rows[1:], strict=False):
        assert (row["n_in"], row["j_in"], row["r_in"], row["ch_in"]) == (
            previous["n_out"],
            previous["j_out"],
            previous["r_out"],
            previous["ch_out"],
        )


def test_markdown_has_one_line_per_row_with_every_field():
    lines = to_markdown(receptive_field_table(Net())).splitlines()
    assert lines[0] == "| " + " | ".join(FIELDS) + " |" and len(lines) == 2 + len(NET_BY_HAND)
    # the dilated row: 16x16, 64 -> 32 channels, padding 2, kernel 3, stride 1, dilation 2, jump 2, field 11 -> 19,
    # the first unit's field centred on pixel 0, narrower than the image
    assert "| block2.8 (Conv2d) | 16 | 16 | 64 | 32 | 2 | 3 | 1 | 2 | 2 | 2 | 11 | 19 | 0.0 |  |" in lines
    wider = [line.split(" ")[1] for line in lines[2:] if line.endswith("| yes |")]
    assert wider == ["block3.3", "block3.4", "block3.8", "block4.0", "block4.4", "block4.5"]  # 39 px and more


def test_net_receptive_field_measured_by_gradients():
    assert empirical_receptive_field(Net(), (3, 320, 320)) == 103


def random_chain(rng: random.Random) -> nn.Sequential:
    layers, channels = [], 3
    for _ in range(rng.randint(1, 5)):
        kind, kernel, stride = rng.choice(["conv", "conv", "max", "avg"]), rng.randint(1, 5), rng.choice([1, 1, 2, 3])
        if kind == "conv":
            out = rng.choice([2, 4])
            layers.append(
                nn.Conv2d(
                    channels,
                    out,
                    kernel,
                    stride,
                    rng.randint(0, 3),
                    dilation=rng.randint(1, 3),
                    groups=rng.choice([1, channels]) if out % channels == 0 else 1,
                )
            )
            channels = out
        else:
            pool = nn.MaxPool2d if kind == "max" else nn.AvgPool2d
            layers.append(pool(kernel, stride, rng.randint(0, kernel // 2)))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("seed", range(30))
def test_random_chains_agree_with_the_gradient_measurement(seed):
    model = random_chain(random.Random(seed))
    rows = receptive_field_table(model, (3, 512, 512))
    size = 2 * rows[-1]["r_out"] + 4 * rows[-1]["j_out"] + 64  # the central unit's field stays inside
    assert (
        empirical_receptive_field(model, (3, size, size))
        == receptive_field_table(model, (3, size, size))[-1]["r_out"]
        == rows[-1]["r_out"]
    )


def test_adaptive_average_pool_is_a_row():
    rows = receptive_field_table(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1)), (3, 10, 10))
    assert rows[-1]["kernel"] == 8 and rows[-1]["r_out"] == 10


def test_growth_curve_plots_the_table():
    rows = receptive_field_table(Net())
    figure = receptive_field_growth(rows)
    field, jump = figure.axes
    assert list(field.lines[0].get_ydata()) == [row["r_out"] for row in rows]
    assert list(jump.lines[0].get_ydata()) == [row["j_out"] for row in rows]
    assert field.lines[1].get_ydata()[0] == 32  # the image size


# 128x128 inputs: every layer's field (79 px at block4.4, 103 px after the pool) lies inside the image, so
# "no gradient outside the box" is a real check (on 32x32 images the deep boxes cover everything).
NET_SIZE = 128


@pytest.mark.parametrize(
    "row",
    [row for row in receptive_field_table(Net(), (3, NET_SIZE, NET_SIZE)) if "Conv2d" in row["layer"]],
    ids=lambda row: row["module"],
)
def test_net_effective_field_is_never_wider_than_the_theoretical_one(row):
    first, last = unit_field(row)
    assert 0 < first and last < NET_SIZE - 1  # the box lies inside, with pixels outside it to check
    torch.manual_seed(0)
    heatmap = effective_receptive_field(Net(), torch.randn(4, 3, NET_SIZE, NET_SIZE), row["module"])
    assert heatmap.sum() > 0 and support_outside(heatmap, (first, last)) == 0


def chain_and_size(seed):
    """A random chain and an input size at which its output's centre unit sees a box well inside the input."""
    model = random_chain(random.Random(seed))
    rows = receptive_field_table(model, (3, 512, 512))
    return model, 2 * rows[-1]["r_out"] + 4 * rows[-1]["j_out"] + 64


@pytest.mark.parametrize("seed", range(30))
def test_random_chains_effective_field_fills_the_theoretical_box_and_no_more(seed):
    model, size = chain_and_size(seed)
    row = receptive_field_table(model, (3, size, size))[-1]
    layer = str(len(model) - 1)
    torch.manual_seed(seed)
    heatmap = effective_receptive_field(model, torch.randn(2, 3, size, size), layer)  # random weights, max pools
    assert support_outside(heatmap, unit_field(row)) == 0
    # An all-ones linear copy sends gradient to every pixel its field samples: from edge to edge of the box
    # (dilation and strides may skip pixels between).
    linear = _all_ones_linear_copy(model)  # float64
    ones = effective_receptive_field(linear, torch.ones(1, 3, size, size, dtype=torch.float64), layer)
    first, last = unit_field(row)
    assert 0 < first and last < size - 1  # inside, with pixels outside it to check
    covered = np.flatnonzero(ones.sum(axis=1) > 0)
    assert (covered.min(), covered.max()) == (first, last)


def test_effective_fields_of_the_untrained_and_trained_net_are_well_inside_the_theoretical_one(cifar):
    inputs = model_input(cifar.test_images[:256], cifar.mean, cifar.std)
    labels = cifar.test_labels[:256]
    torch.manual_seed(0)
    for model in (Net(), trained_model(REFERENCE)):
        field = effective_field(model, inputs, "block4.4", channels=labels)  # the last conv, true class
        half_width = (field["field"][1] - field["field"][0]) / 2  # 39 px: wider than the image
        assert field["radii"][0.5] < half_width / 2 and field["radii"][0.95] < 0.75 * half_width


def test_grad_cam_maps_are_image_sized_finite_non_negative_and_follow_the_class(cifar):
    model = trained_model(REFERENCE)
    inputs = model_input(cifar.test_images[:8], cifar.mean, cifar.std)
    maps = grad_cam(model, inputs, cifar.test_labels[:8])
    assert maps.shape == (8, 32, 32) and np.isfinite(maps).all() and (maps >= 0).all() and maps.max() > 0
    other = grad_cam(model, inputs, (cifar.test_labels[:8] + 1) % 10)
    assert all(not np.allclose(a, b) for a, b in zip(maps, other, strict=True))


def test_grad_cam_at_the_last_conv_is_its_class_channel_over_16(cifar):
    # block4.4 feeds only the 4x4 average pool: class c's score has gradient 1/16 on channel c, 0 elsewhere.
    model = trained_model(REFERENCE)
    inputs, labels = model_input(cifar.test_images[:8], cifar.mean, cifar.std), cifar.test_labels[:8]
    captured = []
    hook = model.block4[4].register_forward_hook(lambda module, args, output: captured.append(output.detach()))
    model(inputs)
    hook.remove()
    class_channel = captured[0][torch.arange(8), torch.as_tensor(labels)]
    expected = torch.nn.functional.interpolate(torch.relu(class_channel)[:, None] / 16, size=(32, 32), mode="bilinear")
    np.testing.assert_allclose(grad_cam(model, inputs, labels), expected[:, 0].numpy(), atol=1e-6)
    assert grad_cam(model, inputs, labels, layer="block3.4").shape == (8, 32, 32)  # from an 8x8 layer


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


def test_the_explorer_shows_the_chosen_units_box_with_its_gradient_inside(cifar):
    model = trained_model(REFERENCE)
    images = cifar.test_images[:8]
    inputs = model_input(images, cifar.mean, cifar.std)
    row = next(r for r in receptive_field_table(model) if r["module"] == "block2.8")  # 16x16, jump 2
    assert (nearest_unit(row, 0), nearest_unit(row, 31), nearest_unit(row, 14.9)) == (0, 15, 7)
    ax = unit_view(model, inputs, images, "block2.8", y=3, x=28, index=2).axes[0]
    (top, bottom), (left, right) = unit_field(row, nearest_unit(row, 3)), unit_field(row, nearest_unit(row, 28))
    box = ax.patches[1]  # the solid outline
    assert (box.get_x() + 0.5, box.get_y() + 0.5, box.get_width(), box.get_height()) == (
        left, top, right - left + 1, bottom - top + 1)  # fmt: skip
    heat = np.asarray(ax.images[1].get_array())
    rows, cols = np.indices(heat.shape)
    outside = (rows < top) | (rows > bottom) | (cols < left) | (cols > right)
    assert heat.max() == 1 and heat[outside].sum() == 0 and heat[~outside].sum() > 0
    controls = explorer(model, inputs, images).children[:4]
    assert [control.description for control in controls] == ["layer", "row (px)", "column (px)", "test image"]
