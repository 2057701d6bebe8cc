import json
from dataclasses import replace

import pytest
import torch

from helpers import UserError
from helpers.checkpoint import load_checkpoint, load_history
from helpers.config import TrainConfig
from helpers.engine import TrainingDiverged, fit

# Small enough for seconds on 2 CPU cores; lr and batch chosen so one epoch learns something.
SMOKE = TrainConfig(epochs=1, batch_size=16, max_lr=0.05, device="cpu", progress=False)
TINY = replace(SMOKE, epochs=2, batch_size=32)


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def test_one_epoch_on_2000_images_beats_chance_and_saves_everything(small_cifar, tmp_path):
    history = fit(replace(SMOKE, out=str(tmp_path)), data=small_cifar)
    assert history[0]["test_acc"] > 0.15  # chance is 0.10; 1,000 test images: sd 0.01
    saved = load_history(tmp_path)
    assert saved["epochs"] == history and saved["config"]["max_lr"] == 0.05
    assert saved["meta"]["device"].startswith("CPU")
    checkpoint = load_checkpoint(tmp_path)  # weights_only=True
    assert checkpoint["epoch"] == 1 and set(checkpoint) >= {"model", "optimizer", "scheduler", "history", "config"}


@pytest.fixture(scope="module")
def tiny_cifar(data_root):
    from helpers.data import load_cifar10
    return load_cifar10(data_root, subset=320, test_subset=200, download=False)


@pytest.mark.parametrize("pipeline", ["albumentations", "fast"])
def test_same_seed_gives_the_same_history(tiny_cifar, tmp_path, pipeline):
    config = replace(TINY, pipeline=pipeline)
    first = fit(replace(config, out=str(tmp_path / "a")), data=tiny_cifar)
    second = fit(replace(config, out=str(tmp_path / "b")), data=tiny_cifar)
    other_seed = fit(replace(config, seed=2, out=str(tmp_path / "c")), data=tiny_cifar)
    assert without_seconds(first) == without_seconds(second)
    assert without_seconds(first) != without_seconds(other_seed)


@pytest.mark.parametrize("pipeline", ["albumentations", "fast"])
def test_resumed_run_repeats_the_uninterrupted_one(tiny_cifar, tmp_path, pipeline):
    config = replace(TINY, pipeline=pipeline)
    uninterrupted = fit(replace(config, out=str(tmp_path / "whole")), data=tiny_cifar)

    def interrupt(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(replace(config, out=str(tmp_path / "parts")), data=tiny_cifar, on_epoch_end=interrupt)
    assert load_checkpoint(tmp_path / "parts")["epoch"] == 1
    resumed = fit(replace(config, out=str(tmp_path / "parts")), data=tiny_cifar, resume=tmp_path / "parts")
    assert without_seconds(resumed) == without_seconds(uninterrupted)
    assert load_history(tmp_path / "parts")["meta"]["resumed"][0]["at_epoch"] == 2


def test_resume_with_other_experiment_settings_is_refused(tiny_cifar, tmp_path):
    fit(replace(TINY, epochs=1, out=str(tmp_path)), data=tiny_cifar)
    with pytest.raises(UserError, match="epochs=1"):
        fit(replace(TINY, epochs=3, out=str(tmp_path)), data=tiny_cifar, resume=tmp_path)


def test_existing_run_is_not_overwritten(tiny_cifar, tmp_path):
    fit(replace(TINY, epochs=1, out=str(tmp_path)), data=tiny_cifar)
    before = (tmp_path / "history.json").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        fit(replace(TINY, epochs=1, seed=5, out=str(tmp_path)), data=tiny_cifar)
    assert (tmp_path / "history.json").read_bytes() == before


def test_nan_loss_stops_the_run_and_keeps_the_last_good_epoch(tiny_cifar, tmp_path):
    def interrupt(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(replace(TINY, out=str(tmp_path)), data=tiny_cifar, on_epoch_end=interrupt)
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    checkpoint["model"]["block1.0.weight"].fill_(float("nan"))  # makes epoch 2's loss NaN
    torch.save(checkpoint, tmp_path / "poisoned.pt")
    with pytest.raises(TrainingDiverged, match="lower --max-lr"):
        fit(replace(TINY, out=str(tmp_path)), data=tiny_cifar, resume=tmp_path / "poisoned.pt")
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    assert len(json.loads((tmp_path / "history.json").read_text())["epochs"]) == 1


@pytest.mark.parametrize("change, message", [
    (dict(epochs=0), "--epochs must be positive"),
    (dict(batch_size=-1), "--batch-size must be positive"),
    (dict(pipeline="dali"), "--pipeline must be one of"),
    (dict(device="tpu"), "unknown device"),
])
def test_bad_settings_are_user_errors(tiny_cifar, tmp_path, change, message):
    with pytest.raises(UserError, match=message):
        fit(replace(TINY, out=str(tmp_path), **change), data=tiny_cifar)
