import math

import numpy as np
import pytest
import torch
from scipy import stats

from helpers.machinery.cpu_dropout import Dropout, dropped_positions


@pytest.mark.parametrize("draws", [None, 1])  # 1: one gap per round, as many rounds as drops
def test_dropped_positions_have_the_bernoulli_joint_distribution(draws):
    # Every pattern of drops over 4 elements, first and last included, at its exact probability.
    torch.manual_seed(0)
    n, p, calls = 4, 0.3, 20_000
    weights = torch.tensor([2**i for i in range(n)])
    patterns = torch.tensor([int(weights[dropped_positions(n, p, draws)].sum()) for _ in range(calls)])
    observed = torch.bincount(patterns, minlength=2**n).numpy()
    drops = np.array([bin(pattern).count("1") for pattern in range(2**n)])
    expected = p**drops * (1 - p) ** (n - drops) * calls
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_dropped_positions_at_scale_drop_p_independently():
    torch.manual_seed(0)
    n, p, calls = 10_000, 0.03, 300
    dropped = torch.zeros(calls, n, dtype=torch.bool)
    for row in dropped:
        positions = dropped_positions(n, p)
        assert positions.unique().numel() == positions.numel() and 0 <= positions.min() and positions.max() < n
        row[positions] = True
    assert abs(dropped.float().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / dropped.numel())
    both = (dropped[:, 1:] & dropped[:, :-1]).float().mean().item()  # neighbours: p^2 if independent
    assert abs(both - p * p) < 4 * math.sqrt(p * p / (calls * (n - 1)))


def test_cpu_dropout_zeroes_and_rescales_like_nn_dropout():
    dropout = Dropout(0.03)
    x = torch.randn(64, 16, 32, 32).contiguous(memory_format=torch.channels_last).requires_grad_()
    torch.manual_seed(0)
    y = dropout(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.97)
    assert abs(1 - kept.float().mean().item() - 0.03) < 0.002
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.97)
    torch.manual_seed(0)
    torch.testing.assert_close(dropout(x), y)  # seeded like the rest of torch
    assert torch.equal(dropout.eval()(x), x)
