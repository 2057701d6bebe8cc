import contextlib
import io
from pathlib import Path

import torch
from torchsummary import summary

from helpers.model import Net

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
