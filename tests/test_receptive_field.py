import random

import numpy as np
import pytest
import torch
from torch import nn

from helpers.analysis import model_input, trained_model
from helpers.model import Net
from helpers.receptive_field import (
    FIELDS,
    _all_ones_linear_copy,
    effective_field,
    explorer,
    gradient_map,
    layer_row,
    measured_field_size,
    nearest_unit,
    receptive_field_table,
    support_outside,
    to_markdown,
    unit_field,
    unit_view,
)
from runs import REFERENCE

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
    header = "| layer | " + " | ".join(FIELDS[1:-2]) + " | sees all | sees none |"
    assert lines[0] == header and len(lines) == 2 + len(NET_BY_HAND)
    # the dilated row: 16x16, 64 -> 32 channels, padding 2, kernel 3, stride 1, dilation 2, jump 2, field 11 -> 19,
    # the first unit's field centred on pixel 0, narrower than the image, so no unit sees all of it; every unit sees
    # some pixels (the pool before it has 31 units that see none, but their neighbours do)
    assert (
        "| block2.8 (Conv2d) | 16 | 16 | 64 | 32 | 2 | 3 | 1 | 2 | 2 | 2 | 11 | 19 | 0.0 |  | 0/256 | 0/256 |" in lines
    )
    wider = [line.split(" ")[1] for line in lines[2:] if "| yes |" in line]
    assert wider == ["block3.3", "block3.4", "block3.8", "block4.0", "block4.4", "block4.5"]  # 39 px and more


def test_net_receptive_field_measured_by_gradients():
    assert measured_field_size(Net(), (3, 320, 320)) == 103


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
        measured_field_size(model, (3, size, size))
        == receptive_field_table(model, (3, size, size))[-1]["r_out"]
        == rows[-1]["r_out"]
    )


def test_adaptive_average_pool_is_a_row():
    rows = receptive_field_table(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1)), (3, 10, 10))
    assert rows[-1]["kernel"] == 8 and rows[-1]["r_out"] == 10


# 128x128 inputs: every layer's field (79 px at block4.4, 103 px after the pool) lies inside the image, so
# "no gradient outside the box" is a real check (on 32x32 images the deep boxes cover everything).
NET_SIZE = 128


@pytest.mark.parametrize(
    "row",
    [row for row in receptive_field_table(Net(), (3, NET_SIZE, NET_SIZE)) if "Conv2d" in row["label"]],
    ids=lambda row: row["module"],
)
def test_net_effective_field_is_never_wider_than_the_theoretical_one(row):
    first, last = unit_field(row)
    assert 0 < first and last < NET_SIZE - 1  # the box lies inside, with pixels outside it to check
    torch.manual_seed(0)
    heatmap = gradient_map(Net(), torch.randn(4, 3, NET_SIZE, NET_SIZE), row["module"])
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
    heatmap = gradient_map(model, torch.randn(2, 3, size, size), layer)  # random weights, max pools
    assert support_outside(heatmap, unit_field(row)) == 0
    # An all-ones linear copy sends gradient to every pixel its field samples: from edge to edge of the box
    # (dilation and strides may skip pixels between).
    linear = _all_ones_linear_copy(model)  # float64
    ones = gradient_map(linear, torch.ones(1, 3, size, size, dtype=torch.float64), layer)
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


def test_the_explorer_shows_the_image_and_the_chosen_units_box_centre_and_gradient_named(cifar):
    model = trained_model(REFERENCE)
    images, labels = cifar.test_images[:8], cifar.test_labels[:8]
    inputs = model_input(images, cifar.mean, cifar.std)
    row = next(r for r in receptive_field_table(model) if r["module"] == "block2.8")  # 16x16, jump 2
    assert (nearest_unit(row, 0), nearest_unit(row, 31), nearest_unit(row, 14.9)) == (0, 15, 7)
    figure = unit_view(model, inputs, images, labels, cifar.classes, "block2.8", y=3, x=28, index=2)
    image_panel, gradient_panel = figure.axes[:2]
    (top, bottom), (left, right) = unit_field(row, nearest_unit(row, 3)), unit_field(row, nearest_unit(row, 28))
    for ax in (image_panel, gradient_panel):
        box = ax.patches[1]  # the solid outline
        assert (box.get_x() + 0.5, box.get_y() + 0.5, box.get_width(), box.get_height()) == (
            left, top, right - left + 1, bottom - top + 1)  # fmt: skip
        assert list(ax.lines[0].get_xydata()[0]) == [(left + right) / 2, (top + bottom) / 2]  # the centre, (x, y)
    shown = np.asarray(image_panel.images[0].get_array())[::8, ::8]  # drawn 8x larger, at full strength
    np.testing.assert_array_equal(shown, images[2])
    heat = np.asarray(gradient_panel.images[1].get_array())
    rows, cols = np.indices(heat.shape)
    outside = (rows < top) | (rows > bottom) | (cols < left) | (cols > right)
    assert heat.max() == 1 and heat[outside].sum() == 0 and heat[~outside].sum() > 0
    predicted = cifar.classes[int(model(inputs[2:3]).argmax())]
    assert figure._suptitle.get_text() == f"test image 2: {cifar.classes[labels[2]]}, predicted {predicted}"
    controls = explorer(model, inputs, images, labels, cifar.classes).children[:4]
    assert [control.description for control in controls] == ["layer", "row (px)", "column (px)", "test image"]


def test_a_field_wider_than_the_image_sees_all_of_it_only_from_the_middle_until_block4_0():
    rows = {row["module"]: row for row in receptive_field_table(Net())}
    assert unit_field(rows["block3.3"], 0) == (-19.0, 19.0)  # the corner unit: pixels 0-19 of 32, and padding
    seen = {name: rows[name]["sees_all"] for name in ("block3.0", "block3.3", "block3.4", "block3.8", "block4.0")}
    assert seen == {"block3.0": "0/64", "block3.3": "4/64", "block3.4": "4/64", "block3.8": "4/16", "block4.0": "16/16"}
    first_all = next(
        name for name, row in rows.items() if row["sees_all"].split("/")[0] == row["sees_all"].split("/")[1]
    )
    assert first_all == "block4.0" and rows["block3.3"]["wider"] == "yes"


def test_the_explorer_opens_on_the_dilated_layer_and_works_on_a_model_without_one():
    images = np.zeros((3, 32, 32, 3), dtype=np.uint8)
    inputs = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    classes = [str(i) for i in range(10)]
    layer = explorer(Net(), inputs, images, [0, 1, 2], classes).children[0]
    assert layer.value == "block2.8"  # the published table's wrong row
    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, stride=2), nn.Conv2d(8, 10, 3), nn.Flatten(1))
    controls = explorer(plain, inputs, images, [0, 1, 2], classes).children
    assert controls[0].value == "1" and controls[3].value == 2  # the middle row; the last of 3 images


def test_the_units_that_see_no_pixel_are_those_whose_value_no_image_changes():
    model = Net().eval()
    rows = receptive_field_table(model)
    outputs = {}
    hooks = [dict(model.named_modules())[row["module"]].register_forward_hook(
        lambda module, args, out, name=row["module"]: outputs.setdefault(name, []).append(out)) for row in rows]  # fmt: skip
    with torch.no_grad():
        for seed in (0, 1):
            model(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed)))
    for hook in hooks:
        hook.remove()
    for row in rows:
        first, second = outputs[row["module"]]
        unchanged = (first == second).all(1)[0]  # (n, n): every channel the same for two random images
        blind = torch.zeros_like(unchanged)
        blind[row["blind"], :] = blind[:, row["blind"]] = True
        assert torch.equal(unchanged, blind), row["label"]
        assert row["sees_none"] == f"{int(blind.sum())}/{row['n_out'] ** 2}"
    assert layer_row(rows, "pool")["sees_none"] == "31/256" and layer_row(rows, "pool")["blind"] == [0]
    view = unit_view(model, torch.randn(1, 3, 32, 32), np.zeros((1, 32, 32, 3), np.uint8), [0], list("0123456789"),
                     "pool", y=0, x=20, index=0)  # fmt: skip
    assert "sees no pixel" in view.axes[1].get_title()
