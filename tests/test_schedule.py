"""The one-cycle schedule step by step, and the LR range test."""

import math
from dataclasses import replace

import numpy as np
import pytest

from helpers import UserError
from helpers.plots import lr_range_plot, schedule_plot
from helpers.schedule import lr_range_test, one_cycle
from helpers.training import settle
from runs import SMOKE_CONFIG, TWO_EPOCHS


def test_the_schedule_drawn_from_one_cycle_is_the_one_training_followed(two_epochs, smoke_data):
    history = two_epochs["albumentations"][0]
    steps = math.ceil(len(smoke_data.train_labels) / TWO_EPOCHS.batch_size)
    schedule = one_cycle(TWO_EPOCHS, steps)
    assert len(schedule["lr"]) == 2 * steps and schedule["lr"].max() == pytest.approx(TWO_EPOCHS.max_lr, rel=1e-3)
    assert schedule["lr"][0] == pytest.approx(TWO_EPOCHS.max_lr / 25)  # OneCycleLR's div_factor
    assert (schedule["momentum"].min(), schedule["momentum"].max()) == pytest.approx((0.85, 0.95), abs=1e-3)
    assert history["epochs"][0]["lr"] == pytest.approx(schedule["lr"][steps], rel=1e-12)  # after epoch 1's last step
    figure = schedule_plot(schedule, history)
    curve, recorded = figure.axes[0].lines
    assert list(curve.get_ydata()) == list(schedule["lr"]) and list(recorded.get_xdata()) == [steps, 2 * steps]


def test_the_lr_range_test_sweeps_exponentially_shows_its_progress_suggests_where_the_loss_falls_and_stops_if_it_climbs(
    smoke_data, capsys
):
    run = settle(SMOKE_CONFIG)
    test = lr_range_test(run, smoke_data, start_lr=1e-4, end_lr=1.0, steps=20)
    captured = capsys.readouterr()
    assert "LR range test" in captured.out and "20/20" in captured.out and not captured.err  # not pink in a notebook
    np.testing.assert_allclose(test["lr"][[0, -1]], [1e-4, 1.0])
    np.testing.assert_allclose(np.diff(np.log(test["lr"])), np.log(1e4) / 19)  # exponential: equal steps in log(lr)
    assert np.isfinite(test["loss"]).all() and test["lr"][10] <= test["suggestion"] <= test["lr"][-6]
    runaway = lr_range_test(run, smoke_data, start_lr=1e-3, end_lr=1e4, steps=40)
    assert 17 <= len(runaway["lr"]) < 40 and not runaway["loss"][-1] < 4 * runaway["loss"].min()  # stopped: diverged
    with pytest.raises(UserError, match="diverged within 2 steps of 100: start the test lower"):
        lr_range_test(run, smoke_data, start_lr=1e2, end_lr=1e6, steps=30)
    assert test["ran_on"].startswith("CPU") and f"batches of 16 from {SMOKE_CONFIG.subset} images" in test["ran_on"]
    figure = lr_range_plot(test, chosen=0.017)
    assert [line.get_xdata()[0] for line in figure.axes[0].lines[1:]] == [test["suggestion"], 0.017]


def test_the_momentum_setting_does_not_change_the_schedule_training_follows():
    # What --momentum's help and notebook 4 say: OneCycleLR sets the momentum at every step, the first included.
    published, other = (one_cycle(replace(TWO_EPOCHS, momentum=momentum), 20) for momentum in (0.9, 0.5))
    np.testing.assert_array_equal(published["momentum"], other["momentum"])
    np.testing.assert_array_equal(published["lr"], other["lr"])
    assert published["momentum"][0] == 0.95
