"""Receptive fields: the table computed from a model, where a unit's field lies, the effective field, and
notebook 3's explorer of both.

For a layer with kernel k, stride s, padding p and dilation d (k_eff = d(k-1)+1):
    n_out = floor((n_in + 2p - k_eff) / s) + 1
    j_out = j_in * s                      (jump: input pixels between adjacent outputs)
    r_out = r_in + (k_eff - 1) * j_in     (receptive field, in input pixels)
    start_out = start_in + ((k_eff - 1) / 2 - p) * j_in   (centre of the first unit's field, in pixels)
j is the effective stride: input pixels between neighbouring units; "wider" marks the layers whose
field is wider than the input image. Wider is not enough for a unit to see the whole image: its field must
also lie over all of it, which depends on where the unit is; "sees all" counts the units whose field does.
The formulas give every unit a field, but a unit can see no pixel at all: one that reads only the zero padding
of its layer's input (the strided 1x1 "pool" reads padding alone in its first row and column, and so 31 of its
256 units are 0 whatever the image). "sees none" counts them; a row's "blind" lists them along one axis.
Each row's "label" names its layer for people (block2.8 (Conv2d)); `layer` arguments are module names
(block2.8), as in model.named_modules() and the row's "module".
The effective receptive field (Luo et al., NeurIPS 2016) is where a unit's input gradient actually lies.
"""

import math
from contextlib import contextmanager

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from helpers.plots import unit_field_view

GEOMETRY_LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
FIELDS = (
    "label",
    "n_in",
    "n_out",
    "ch_in",
    "ch_out",
    "padding",
    "kernel",
    "stride",
    "dilation",
    "j_in",
    "j_out",
    "r_in",
    "r_out",
    "start",
    "wider",
    "sees_all",
    "sees_none",
)
HEADERS = {"label": "layer", "sees_all": "sees all", "sees_none": "sees none"}  # column names in the markdown table


def _first(value):
    """Height component of an int-or-pair layer argument (the table assumes square geometry)."""
    return value[0] if isinstance(value, (tuple, list)) else value


def _geometry(module, n_in, n_out):
    """(kernel, stride, padding, dilation) of a layer along the height axis."""
    if isinstance(module, nn.AdaptiveAvgPool2d):  # with n_in divisible by n_out it is a plain pool
        stride = n_in // n_out
        return n_in - (n_out - 1) * stride, stride, 0, 1
    dilation = _first(getattr(module, "dilation", 1))
    return _first(module.kernel_size), _first(module.stride), _first(module.padding), dilation


@contextmanager
def in_eval_mode(model: nn.Module):
    """`model` in eval mode (BatchNorm's running statistics, no dropout) for the block, then as it was."""
    was_training = model.training
    try:
        yield model.eval()
    finally:
        model.train(was_training)


def receptive_field_table(model: nn.Module, input_size=(3, 32, 32)) -> list[dict]:
    """One row per geometry-changing layer (Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d), in forward order."""
    shapes = []
    hooks = [
        module.register_forward_hook(lambda m, args, out, name=name: shapes.append((name, m, args[0].shape, out.shape)))
        for name, module in model.named_modules()
        if isinstance(module, GEOMETRY_LAYERS)
    ]
    try:
        with in_eval_mode(model), torch.no_grad():
            model(torch.zeros(1, *input_size))
    finally:
        for hook in hooks:
            hook.remove()
    rows, jump, field, start = [], 1, 1, 0.0
    seeing = [True] * input_size[-1]  # along one axis: which units depend on at least one pixel
    for name, module, in_shape, out_shape in shapes:
        n_in, n_out = in_shape[-2], out_shape[-2]
        kernel, stride, padding, dilation = _geometry(module, n_in, n_out)
        effective = dilation * (kernel - 1) + 1
        row = dict(
            label=f"{name} ({type(module).__name__})",
            n_in=n_in,
            n_out=n_out,
            ch_in=in_shape[1],
            ch_out=out_shape[1],
            padding=padding,
            kernel=kernel,
            stride=stride,
            dilation=dilation,
            j_in=jump,
            j_out=jump * stride,
            r_in=field,
            r_out=field + (effective - 1) * jump,
            start=start + ((effective - 1) / 2 - padding) * jump,
            module=name,
        )
        row["wider"] = "yes" if row["r_out"] > input_size[-1] else ""  # than the image: not yet seeing all of it
        whole = whole_image_units(row, input_size[-1])
        row["sees_all"] = f"{whole**2}/{n_out**2}"  # units whose field covers the whole image, of all
        seeing = [
            any(
                0 <= at < n_in and seeing[at]
                for at in range(o * stride - padding, o * stride - padding + effective, dilation)
            )
            for o in range(n_out)
        ]
        row["blind"] = [unit for unit, sees in enumerate(seeing) if not sees]  # along one axis
        row["sees_none"] = f"{n_out**2 - (n_out - len(row['blind'])) ** 2}/{n_out**2}"  # units that read only padding
        rows.append(row)
        jump, field, start = row["j_out"], row["r_out"], row["start"]
    return rows


def layer_row(rows: list[dict], layer: str) -> dict:
    """The row of the layer named `layer` (a name from model.named_modules()) in a receptive_field_table."""
    return next(row for row in rows if row["module"] == layer)


def whole_image_units(row: dict, size: int) -> int:
    """How many units along one axis have a field that covers every pixel 0..size-1 of that axis: a field
    wider than the image covers it only from the units near the middle."""
    fields = (unit_field(row, unit) for unit in range(row["n_out"]))
    return sum(first <= 0 and last >= size - 1 for first, last in fields)


def centre_unit(row: dict) -> int:
    """Index (along each axis) of the centre unit of a row's output: the upper-left one of the middle four when even."""
    return (row["n_out"] - 1) // 2


def unit_field(row: dict, unit: int | None = None) -> tuple[float, float]:
    """(first, last) input pixel, along one axis, of the theoretical field of a unit (default: the centre one).

    May reach outside the image: that part of the field sees only padding.
    """
    unit = centre_unit(row) if unit is None else unit
    centre = row["start"] + unit * row["j_out"]
    return centre - (row["r_out"] - 1) / 2, centre + (row["r_out"] - 1) / 2


def to_markdown(rows: list[dict]) -> str:
    """The table as GitHub markdown."""
    header = [HEADERS.get(name, name) for name in FIELDS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(FIELDS)]
    lines += ["| " + " | ".join(str(row[f]) for f in FIELDS) + " |" for row in rows]
    return "\n".join(lines)


def measured_field_size(model: nn.Module, input_size=(3, 256, 256)) -> int:
    """Receptive field of the central output unit, measured without the formulas.

    In a copy of the network with every weight one, no bias and no nonlinearity (max pools become
    average pools of the same geometry, whose gradient reaches every pixel of the window), the
    gradient of the central output with respect to an all-ones input is non-zero exactly on the
    pixels that unit sees. Returns the height of that region; the input must be large enough
    that the region does not touch the border.
    """
    linear = _all_ones_linear_copy(model)
    ones = torch.ones(1, *input_size, dtype=torch.float64)
    rows = np.flatnonzero(gradient_map(linear, ones, str(len(linear) - 1)).sum(axis=1) > 0)
    if rows[0] == 0 or rows[-1] == input_size[-2] - 1:
        raise ValueError(f"input {input_size} is too small: the receptive field reaches its border")
    return int(rows[-1] - rows[0] + 1)


def _all_ones_linear_copy(model: nn.Module) -> nn.Sequential:
    layers = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            conv = nn.Conv2d(
                module.in_channels,
                module.out_channels,
                module.kernel_size,
                module.stride,
                module.padding,
                module.dilation,
                module.groups,
                bias=False,
                dtype=torch.float64,
            )
            nn.init.ones_(conv.weight)
            layers.append(conv)
        elif isinstance(module, nn.MaxPool2d):
            layers.append(nn.AvgPool2d(module.kernel_size, module.stride, module.padding))
        elif isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            layers.append(module)
    return nn.Sequential(*layers).requires_grad_(False)


def gradient_map(
    model: nn.Module, images: torch.Tensor, layer: str, channels=None, batch_size=64, unit=None
) -> np.ndarray:
    """Mean absolute input gradient of one unit of `layer` (`unit` = (y, x); default the centre one),
    over `images`: an (H, W) map.

    channels: one channel of the layer per image (for example the true class at the last conv);
    default: the sum over the layer's channels. The model runs in eval mode, in the dtype of `images`.
    """
    module = dict(model.named_modules())[layer]
    captured = []
    hook = module.register_forward_hook(lambda m, args, out: captured.append(out))
    total = torch.zeros(images.shape[-2:], dtype=torch.float64)
    try:
        with in_eval_mode(model):
            for first in range(0, len(images), batch_size):
                batch = images[first : first + batch_size].detach().clone().requires_grad_(True)
                captured.clear()
                model(batch)
                output = captured[0]
                y, x = unit if unit is not None else ((output.shape[-2] - 1) // 2, (output.shape[-1] - 1) // 2)
                unit_output = output[:, :, y, x]
                if channels is None:
                    chosen = unit_output.sum()
                else:
                    picked = torch.as_tensor(channels[first : first + batch_size]).view(-1, 1)
                    chosen = unit_output.gather(1, picked).sum()
                (gradient,) = torch.autograd.grad(chosen, batch)
                total += gradient.abs().sum(dim=(0, 1)).double()
    finally:
        hook.remove()
    return (total / len(images)).numpy()


def mass_radii(heatmap: np.ndarray, centre: tuple[float, float], fractions=(0.5, 0.95)) -> dict:
    """For each fraction, the smallest radius (pixels, from `centre` = (y, x)) holding that share of the map's mass."""
    rows, cols = np.indices(heatmap.shape)
    distance = np.hypot(rows - centre[0], cols - centre[1]).ravel()
    order = np.argsort(distance, kind="stable")
    cumulative = np.cumsum(heatmap.ravel()[order]) / heatmap.sum()
    return {fraction: float(distance[order][np.searchsorted(cumulative, fraction)]) for fraction in fractions}


def support_outside(heatmap: np.ndarray, field: tuple[float, float]) -> float:
    """The gradient mass outside a unit's theoretical field: (first, last) pixel along each axis."""
    rows, cols = np.indices(heatmap.shape)
    first, last = math.floor(field[0]), math.ceil(field[1])
    inside = (rows >= first) & (rows <= last) & (cols >= first) & (cols <= last)
    return float(np.abs(heatmap[~inside]).sum())


def effective_field(model: nn.Module, inputs: torch.Tensor, layer: str, channels=None) -> dict:
    """The effective field of `layer`'s centre unit beside its theoretical one, for `effective_field_maps`:
    {"heatmap", "field": (first, last) pixel, "centre": (y, x), "radii": {0.5: r, 0.95: r}}."""
    row = layer_row(receptive_field_table(model, tuple(inputs.shape[1:])), layer)
    heatmap = gradient_map(model, inputs, layer, channels)
    first, last = unit_field(row)
    centre = ((first + last) / 2,) * 2
    return {"heatmap": heatmap, "field": (first, last), "centre": centre, "radii": mass_radii(heatmap, centre)}


# Notebook 3's explorer: pick a layer, a place and a test image, and see the theoretical field of the unit
# there beside its effective field on that image. `unit_view` draws one view (tested); `explorer` puts it
# under ipywidgets controls, which Colab and JupyterLab render.


def nearest_unit(row: dict, pixel: float) -> int:
    """The unit of a layer (index along one axis) whose field is centred nearest `pixel`."""
    return int(np.clip(round((pixel - row["start"]) / row["j_out"]), 0, row["n_out"] - 1))


def unit_view(model, inputs, images, labels, classes, layer: str, y: float, x: float, index: int):
    """The figure for one choice: the unit of `layer` nearest pixel (y, x), on test image `index`, named with
    its true class and the model's prediction.

    inputs: the network's inputs for `images` (analysis.model_input); labels: their true classes, named by
    `classes`. The effective field is the unit's input gradient on that one image, summed over the layer's
    channels."""
    row = layer_row(receptive_field_table(model, tuple(inputs.shape[1:])), layer)
    unit = nearest_unit(row, y), nearest_unit(row, x)
    heatmap = gradient_map(model, inputs[index : index + 1], layer, unit=unit)
    box = (unit_field(row, unit[0]), unit_field(row, unit[1]))
    centre = tuple((first + last) / 2 for first, last in box)
    with in_eval_mode(model), torch.no_grad():
        predicted = int(model(inputs[index : index + 1]).argmax())
    blind = unit[0] in row["blind"] or unit[1] in row["blind"]
    titles = (
        f"test image {index}: {classes[labels[index]]}, predicted {classes[predicted]}",
        f"the image, and the field of unit {unit} of {row['label']}",
        "no effective field: this unit reads only padding and sees no pixel"
        if blind
        else f"its effective field: {row['r_out']} px in theory",
    )
    return unit_field_view(images[index], box, heatmap, centre, titles)


def first_shown_layer(rows: list[dict]) -> str:
    """The layer the explorer opens on: the first dilated one (the published table's error), else the one in the
    middle of the table."""
    dilated = [row["module"] for row in rows if row["dilation"] > 1]
    return dilated[0] if dilated else rows[len(rows) // 2]["module"]


def explorer(model, inputs: torch.Tensor, images: np.ndarray, labels, classes):
    """unit_view under a layer menu and sliders for the place (y, x) and the image."""
    from ipywidgets import Dropdown, IntSlider, interactive

    rows = receptive_field_table(model, tuple(inputs.shape[1:]))
    size = inputs.shape[-1]

    def show(layer, y, x, image):
        unit_view(model, inputs, images, labels, classes, layer, y, x, image)
        plt.show()

    return interactive(
        show,
        layer=Dropdown(options=[row["module"] for row in rows], value=first_shown_layer(rows), description="layer"),
        y=IntSlider(min=0, max=size - 1, value=size // 2, description="row (px)"),
        x=IntSlider(min=0, max=size - 1, value=size // 2, description="column (px)"),
        image=IntSlider(min=0, max=len(images) - 1, value=min(7, len(images) - 1), description="test image"),
    )
