"""Notebook 4's plan: a preview sized to this machine's measured speed, said; a preview already in the run folder
kept at its size (the measuring itself: tests/commands/test_bench.py)."""

from dataclasses import asdict, replace
from pathlib import Path

import pytest

from helpers import timing
from helpers.config import PREVIEW, TrainConfig, sized_for
from helpers.machinery.files import save_json
from helpers.training import settle


def rates(train, evaluate):
    return lambda run, data: {"train_images_per_s": train, "eval_images_per_s": evaluate, "steps": 16}


@pytest.fixture
def preview(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(data_root))
    return settle(TrainConfig(device="cpu", out=str(tmp_path / "run")))


def test_a_preview_that_fits_the_time_here_is_the_preview(preview, monkeypatch, capsys):
    monkeypatch.setattr(timing, "timed_passes", rates(2000.0, 8000.0))  # 5 x (2.5 + 0.25) s, and 9.6 s for the LR test
    run, data, steps = timing.plan(preview, "auto", lr_test_steps=300)
    assert (run.config.subset, run.config.test_subset, steps) == (PREVIEW["subset"], PREVIEW["test_subset"], 300)
    assert (len(data.train_labels), len(data.test_labels)) == (5000, 2000)
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("training on CPU") and said[1].startswith("about 23 s here: 14 s for 5 epoch(s)")


@pytest.mark.parametrize(
    "train, evaluate, sized, line",
    [
        (100.0, 500.0, (2500, 1000, 155), "this machine would take 7.7 min for the preview: sized to about 4.0 min, it "
                                           "trains on 2,500 images and tests on 1,000, with 155 LR range test steps"),
        (10.0, 50.0, (1000, 1000, 100), "this machine would take 77.0 min for the preview: sized to about 4.0 min, it "
                                        "trains on 1,000 images and tests on 1,000, with 100 LR range test steps"),
    ],
    ids=["half as much", "the smallest"],
)  # fmt: skip
def test_a_preview_too_slow_here_trains_on_fewer_images_and_says_so(preview, monkeypatch, capsys, train, evaluate,
                                                                     sized, line):  # fmt: skip
    monkeypatch.setattr(timing, "timed_passes", rates(train, evaluate))
    run, data, steps = timing.plan(preview, "preview", lr_test_steps=300)
    assert (run.config.subset, run.config.test_subset, steps) == sized
    assert (len(data.train_labels), len(data.test_labels)) == sized[:2]
    assert capsys.readouterr().out.splitlines()[0] == line


def test_a_preview_in_the_run_folder_keeps_its_size_whatever_the_speed_today(preview, monkeypatch, capsys):
    earlier = replace(sized_for(preview).config, subset=3000, test_subset=1000)  # sized on a slower day
    epochs = [dict(epoch=e, train_loss=2.0, train_acc=0.2, test_loss=2.0, test_acc=0.2, seconds=9.0) for e in (1, 2)]
    Path(earlier.out).mkdir()
    save_json(f"{earlier.out}/history.json", {"meta": {"device": "CPU"}, "config": asdict(earlier), "epochs": epochs})
    monkeypatch.setattr(timing, "timed_passes", rates(10.0, 50.0))  # today it would be sized to 1,000
    run, data, steps = timing.plan(preview, "auto", lr_test_steps=300)
    assert run.config == earlier and steps == 300 and len(data.train_labels) == 3000
    assert "to continue the run in" in capsys.readouterr().out  # epochs 3 to 5 of that run
