import random

import pytest
from torch import nn

from helpers.model import Net
from helpers.receptive_field import FIELDS, empirical_receptive_field, receptive_field_table, to_markdown

# (kernel, stride, padding, dilation, n_out, j_out, r_out) for Net, worked out by hand.
NET_BY_HAND = [
    (3, 1, 1, 1, 32, 1, 3), (3, 1, 1, 1, 32, 1, 5), (3, 1, 0, 1, 30, 1, 7),
    (1, 2, 1, 1, 16, 2, 7),  # the 1x1 stride-2 "pool"
    (1, 1, 0, 1, 16, 2, 7), (3, 1, 1, 1, 16, 2, 11), (1, 1, 0, 1, 16, 2, 11),
    (3, 1, 2, 2, 16, 2, 19),  # dilated: k_eff 5 (the published table says 15)
    (3, 2, 1, 1, 8, 4, 23), (3, 1, 1, 1, 8, 4, 31), (3, 1, 1, 1, 8, 4, 39), (1, 1, 0, 1, 8, 4, 39),
    (3, 2, 1, 1, 4, 8, 47), (3, 1, 1, 1, 4, 8, 63), (3, 1, 1, 1, 4, 8, 79),
    (4, 4, 0, 1, 1, 32, 103),  # the 4x4 average pool
]


def test_net_table_matches_hand_computation():
    rows = receptive_field_table(Net())
    assert [(r["kernel"], r["stride"], r["padding"], r["dilation"], r["n_out"], r["j_out"], r["r_out"]) for r in rows] == NET_BY_HAND
    for previous, row in zip(rows, rows[1:]):
        assert (row["n_in"], row["j_in"], row["r_in"], row["ch_in"]) == (previous["n_out"], previous["j_out"], previous["r_out"], previous["ch_out"])


def test_markdown_has_one_line_per_row_and_every_field():
    lines = to_markdown(receptive_field_table(Net())).splitlines()
    assert lines[0] == "| " + " | ".join(FIELDS) + " |" and len(lines) == 2 + len(NET_BY_HAND)


def test_net_receptive_field_measured_by_gradients():
    assert empirical_receptive_field(Net(), (3, 320, 320)) == 103


def random_chain(rng: random.Random) -> nn.Sequential:
    layers, channels = [], 3
    for _ in range(rng.randint(1, 5)):
        kind, kernel, stride = rng.choice(["conv", "conv", "max", "avg"]), rng.randint(1, 5), rng.choice([1, 1, 2, 3])
        if kind == "conv":
            out = rng.choice([2, 4])
            layers.append(nn.Conv2d(channels, out, kernel, stride, rng.randint(0, 3), dilation=rng.randint(1, 3),
                                    groups=rng.choice([1, channels]) if out % channels == 0 else 1))
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
    assert empirical_receptive_field(model, (3, size, size)) == receptive_field_table(model, (3, size, size))[-1]["r_out"] == rows[-1]["r_out"]


def test_adaptive_average_pool_is_a_row():
    rows = receptive_field_table(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1)), (3, 10, 10))
    assert rows[-1]["kernel"] == 8 and rows[-1]["r_out"] == 10
