"""Receptive-field table computed from a model by running it once with forward hooks.

For a layer with kernel k, stride s, padding p and dilation d (k_eff = d(k-1)+1):
    n_out = floor((n_in + 2p - k_eff) / s) + 1
    j_out = j_in * s                      (jump: input pixels between adjacent outputs)
    r_out = r_in + (k_eff - 1) * j_in     (receptive field, in input pixels)
"""
import torch
from torch import nn

GEOMETRY_LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
FIELDS = ("layer", "n_in", "n_out", "ch_in", "ch_out", "padding", "kernel", "stride", "dilation",
          "j_in", "j_out", "r_in", "r_out")


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


def receptive_field_table(model: nn.Module, input_size=(3, 32, 32)) -> list[dict]:
    """One row per geometry-changing layer (Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d), in forward order."""
    shapes = []
    hooks = [
        module.register_forward_hook(lambda m, args, out, name=name: shapes.append((name, m, args[0].shape, out.shape)))
        for name, module in model.named_modules()
        if isinstance(module, GEOMETRY_LAYERS)
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    rows, jump, field = [], 1, 1
    for name, module, in_shape, out_shape in shapes:
        n_in, n_out = in_shape[-2], out_shape[-2]
        kernel, stride, padding, dilation = _geometry(module, n_in, n_out)
        effective = dilation * (kernel - 1) + 1
        row = dict(layer=f"{name} ({type(module).__name__})", n_in=n_in, n_out=n_out, ch_in=in_shape[1],
                   ch_out=out_shape[1], padding=padding, kernel=kernel, stride=stride, dilation=dilation,
                   j_in=jump, j_out=jump * stride, r_in=field, r_out=field + (effective - 1) * jump)
        rows.append(row)
        jump, field = row["j_out"], row["r_out"]
    return rows


def to_markdown(rows: list[dict]) -> str:
    """The table as GitHub markdown."""
    lines = ["| " + " | ".join(FIELDS) + " |", "|" + "---|" * len(FIELDS)]
    lines += ["| " + " | ".join(str(row[f]) for f in FIELDS) + " |" for row in rows]
    return "\n".join(lines)


def empirical_receptive_field(model: nn.Module, input_size=(3, 256, 256)) -> int:
    """Receptive field of the central output unit, measured without the formulas.

    In a copy of the network with every weight one, no bias and no nonlinearity (max pools become
    average pools of the same geometry, whose gradient reaches every pixel of the window), the
    gradient of the central output with respect to an all-ones input is non-zero exactly on the
    pixels that unit sees. Returns the height of that region; the input must be large enough
    that the region does not touch the border.
    """
    linear = _all_ones_linear_copy(model)
    image = torch.ones(1, *input_size, dtype=torch.float64, requires_grad=True)
    output = linear(image)
    output[0, 0, output.shape[-2] // 2, output.shape[-1] // 2].backward()
    rows = (image.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten()
    if rows.min() == 0 or rows.max() == input_size[-2] - 1:
        raise ValueError(f"input {input_size} is too small: the receptive field reaches its border")
    return int(rows.max() - rows.min() + 1)


def _all_ones_linear_copy(model: nn.Module) -> nn.Sequential:
    layers = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            conv = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                             module.padding, module.dilation, module.groups, bias=False, dtype=torch.float64)
            nn.init.ones_(conv.weight)
            layers.append(conv)
        elif isinstance(module, nn.MaxPool2d):
            layers.append(nn.AvgPool2d(module.kernel_size, module.stride, module.padding))
        elif isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            layers.append(module)
    return nn.Sequential(*layers).requires_grad_(False)
