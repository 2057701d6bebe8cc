import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from torchsummary import summary

from helpers.model import Dropout, Net, dropped_positions

PUBLISHED = Path(__file__).parent / "fixtures" / "published_summary.txt"


def test_summary_equals_the_published_table_line_for_line():
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary(Net(), (3, 32, 32), device="cpu")
    lines = [line.strip() for line in printed.getvalue().splitlines()]
    published = [line.strip() for line in PUBLISHED.read_text().splitlines()]
    start = lines.index(published[0])
    assert lines[start : start + len(published)] == published
    layer_rows = [line for line in lines if line.split(" ")[0].rsplit("-", 1)[-1].isdigit()]
    assert len(layer_rows) == 47 and layer_rows[-1].startswith("AvgPool2d-47")


def test_parameter_count():
    assert sum(p.numel() for p in Net().parameters()) == 84_904


def test_output_is_log_probabilities_of_ten_classes():
    output = Net().eval()(torch.randn(4, 3, 32, 32))
    assert output.shape == (4, 10)
    torch.testing.assert_close(output.exp().sum(1), torch.ones(4))


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
