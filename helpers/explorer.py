"""Notebook 3's receptive-field explorer: pick a layer, a place and a test image, and see the theoretical
field of the unit there beside its effective field on that image. `unit_view` draws one view (tested);
`explorer` puts it under ipywidgets controls, which Colab and JupyterLab render."""

import numpy as np
import torch

from helpers.plots import unit_field_view
from helpers.receptive_field import effective_receptive_field, layer_row, receptive_field_table, unit_field


def nearest_unit(row: dict, pixel: float) -> int:
    """The unit of a layer (index along one axis) whose field is centred nearest `pixel`."""
    return int(np.clip(round((pixel - row["start"]) / row["j_out"]), 0, row["n_out"] - 1))


def unit_view(model, inputs: torch.Tensor, images: np.ndarray, layer: str, y: float, x: float, index: int):
    """The figure for one choice: the unit of `layer` nearest pixel (y, x), on test image `index`.

    inputs: the network's inputs for `images` (analysis.model_input). The effective field is the
    unit's input gradient on that one image, summed over the layer's channels."""
    row = layer_row(model, layer, tuple(inputs.shape[1:]))
    unit = nearest_unit(row, y), nearest_unit(row, x)
    heatmap = effective_receptive_field(model, inputs[index : index + 1], layer, unit=unit)
    box = (unit_field(row, unit[0]), unit_field(row, unit[1]))
    return unit_field_view(images[index], box, heatmap, f"{row['layer']}, unit {unit}: field {row['r_out']} px")


def explorer(model, inputs: torch.Tensor, images: np.ndarray):
    """unit_view under a layer menu and sliders for the place (y, x) and the image."""
    import matplotlib.pyplot as plt
    from ipywidgets import Dropdown, IntSlider, interactive

    layers = [row["module"] for row in receptive_field_table(model, tuple(inputs.shape[1:]))]
    size = inputs.shape[-1]

    def show(layer, y, x, image):
        unit_view(model, inputs, images, layer, y, x, image)
        plt.show()

    return interactive(
        show,
        layer=Dropdown(options=layers, value="block2.8", description="layer"),
        y=IntSlider(min=0, max=size - 1, value=size // 2, description="row (px)"),
        x=IntSlider(min=0, max=size - 1, value=size // 2, description="column (px)"),
        image=IntSlider(min=0, max=len(images) - 1, value=7, description="test image"),
    )
