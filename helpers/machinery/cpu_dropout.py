"""Dropout with a faster mask on the CPU: the same distribution from about p times as many random numbers.
The model is built of torch's own nn.Dropout; `use_fast_cpu_dropout` swaps this one in where a model trains on
the CPU (helpers.training.Trainer does)."""

import math

import torch
from torch import nn


def dropped_positions(n: int, p: float, draws: int | None = None) -> torch.Tensor:
    """Sorted flat indices of the elements that a Bernoulli(p) dropout drops out of n, on the CPU.

    In an i.i.d. Bernoulli(p) sequence the gaps between successive drops are i.i.d. Geometric(p),
    so drawing the gaps gives exactly the same distribution from about n * p random numbers.
    draws: gaps drawn per round (default: the mean plus 6 standard deviations, so one round nearly always).
    """
    chunks, last = [], -1.0
    while True:
        expected = (n - 1 - last) * p
        count = draws or int(expected + 6 * math.sqrt(expected) + 16)
        # float64 holds every integer position exactly; gaps are >= 1, so the cumsum is increasing.
        positions = torch.empty(count, dtype=torch.float64).geometric_(p).cumsum_(0).add_(last)
        inside = int(torch.searchsorted(positions, float(n)))
        chunks.append(positions[:inside])
        if inside < count:
            return torch.cat(chunks).long()
        last = positions[-1].item()


class Dropout(nn.Dropout):
    """nn.Dropout with a faster mask on the CPU; the same distribution, other random numbers.

    On the CPU torch draws one serial Mersenne Twister number per element, a large share of a
    training step here (docs/performance.md: Benchmark). Drawing only the gaps between the dropped elements
    (`dropped_positions`) needs p times as many. On CUDA, and under torch.compile, torch's own
    fused kernels are used.
    """

    def forward(self, x):
        if (
            not self.training
            or x.device.type != "cpu"
            or self.inplace
            or not 0 < self.p < 1
            or torch.compiler.is_compiling()
        ):  # compiled code draws its own fast random numbers
            return super().forward(x)
        mask = torch.full_like(x, 1 / (1 - self.p))  # dense, so a flat view covers its storage
        mask.as_strided((mask.numel(),), (1,)).index_fill_(0, dropped_positions(mask.numel(), self.p), 0)
        return x * mask


def use_fast_cpu_dropout(model: nn.Module):
    """Make every nn.Dropout of `model` this Dropout, in place: same parameters (none), same state dict."""
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = Dropout
