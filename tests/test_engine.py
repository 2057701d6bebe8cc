import errno
import math
import os
import tempfile
from dataclasses import replace

import pytest
import torch

from helpers import UserError, checkpoint, engine
from helpers.checkpoint import RunFolder, load_checkpoint, load_history
from helpers.config import TrainConfig, smoke
from helpers.engine import TrainingDiverged, divergence, fit

SMOKE = smoke(TrainConfig(device="cpu", progress=False))
TINY = replace(SMOKE, epochs=2, batch_size=32, subset=320, test_subset=200)  # tiny_cifar: 10 steps an epoch


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history["epochs"]]


def interrupt(record):
    raise KeyboardInterrupt


def test_one_epoch_on_2000_images_beats_chance_and_saves_what_it_returns(small_cifar, tmp_path):
    history = fit(replace(SMOKE, out=str(tmp_path)), data=small_cifar)
    assert history["epochs"][0]["test_acc"] > 0.13  # chance is 0.10, sd 0.0095 on 1,000 test images: 3 sd above
    assert load_history(tmp_path) == history
    assert history["meta"]["device"].startswith("CPU") and history["meta"]["train_images"] == 2000
    checkpoint = load_checkpoint(tmp_path)  # weights_only=True
    assert checkpoint["epoch"] == 1 and checkpoint["history"] == history["epochs"]


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


def poisoned_checkpoint(run_folder, tensor, value):
    """Set one tensor of the run's checkpoint to `value`, in place, as a diverged step would."""
    checkpoint = torch.load(run_folder / "checkpoint.pt", weights_only=True)
    checkpoint["model"][tensor].fill_(value)
    torch.save(checkpoint, run_folder / "checkpoint.pt")
    return (run_folder / "checkpoint.pt").read_bytes()


@pytest.mark.parametrize("tensor, value", [
    ("block1.0.weight", float("nan")),  # the loss becomes NaN
    ("block1.1.running_var", float("inf")),  # the losses stay finite: only the BatchNorm statistics say so
])
def test_divergence_stops_the_run_and_keeps_the_last_good_epoch(tiny_cifar, tmp_path, tensor, value):
    with pytest.raises(KeyboardInterrupt):
        fit(replace(TINY, out=str(tmp_path)), data=tiny_cifar, on_epoch_end=interrupt)
    saved = poisoned_checkpoint(tmp_path, tensor, value)
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2: .*lower --max-lr; .* still holds epoch 1"):
        fit(replace(TINY, out=str(tmp_path)), data=tiny_cifar, resume=tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    assert len(load_history(tmp_path)["epochs"]) == 1


def test_an_exploding_but_finite_loss_is_divergence():
    model = torch.nn.Linear(2, 2)
    record = {"train_loss": 1.5, "test_loss": 1.6}
    assert divergence(model, record, first_loss=2.0, fp16=False) is None
    assert "above 20" in divergence(model, {**record, "test_loss": 25.0}, first_loss=2.0, fp16=False)
    assert "above 23" in divergence(model, {**record, "train_loss": 1e4}, first_loss=math.inf, fp16=False)  # epoch 1: ln 10
    assert "non-finite loss" in divergence(model, {**record, "nonfinite_steps": 1}, first_loss=2.0, fp16=False)
    assert divergence(model, {**record, "nonfinite_steps": 1}, first_loss=2.0, fp16=True) is None  # the scaler skipped it


def test_divergence_before_any_epoch_says_nothing_was_saved(tiny_cifar, tmp_path):
    with pytest.raises(TrainingDiverged, match="no epoch has finished, so nothing was saved"):
        fit(replace(TINY, max_lr=1e6, out=str(tmp_path / "run")), data=tiny_cifar)
    assert not (tmp_path / "run").exists()  # a failed start leaves no empty run folder


def test_resume_into_a_folder_holding_another_run_is_refused(tiny_cifar, tmp_path):
    fit(replace(TINY, epochs=1, out=str(tmp_path / "a")), data=tiny_cifar)
    fit(replace(TINY, epochs=1, seed=2, out=str(tmp_path / "b")), data=tiny_cifar)
    before = (tmp_path / "b" / "checkpoint.pt").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        fit(replace(TINY, epochs=1, out=str(tmp_path / "b")), data=tiny_cifar, resume=tmp_path / "a")
    assert (tmp_path / "b" / "checkpoint.pt").read_bytes() == before


def test_a_run_folder_in_use_is_refused_and_freed_when_its_owner_ends(tiny_cifar, tmp_path):
    with RunFolder(tmp_path).open():
        with pytest.raises(UserError, match="in use by another run"):
            fit(replace(TINY, epochs=1, out=str(tmp_path)), data=tiny_cifar)
    fit(replace(TINY, epochs=1, out=str(tmp_path)), data=tiny_cifar)


def test_a_crash_between_checkpoint_and_history_is_repaired_by_resume(tiny_cifar, tmp_path, monkeypatch):
    uninterrupted = fit(replace(TINY, out=str(tmp_path / "whole")), data=tiny_cifar)
    real_save_json = checkpoint.save_json

    def crash_on_epoch_2(path, history):
        if len(history["epochs"]) == 2:
            raise SystemExit("killed")  # the process dies right after the checkpoint's rename
        real_save_json(path, history)

    run = tmp_path / "crashed"
    monkeypatch.setattr(checkpoint, "save_json", crash_on_epoch_2)
    with pytest.raises(SystemExit):
        fit(replace(TINY, out=str(run)), data=tiny_cifar)
    monkeypatch.undo()
    assert len(load_history(run)["epochs"]) == 1 and load_checkpoint(run)["epoch"] == 2
    (run / ".checkpoint.pt.x7k2q9").write_bytes(b"half a checkpoint")  # left by a kill mid-write
    resumed = fit(replace(TINY, out=str(run)), data=tiny_cifar, resume=run)  # nothing left to train
    assert load_history(run) == resumed
    assert without_seconds(resumed) == without_seconds(uninterrupted)
    assert not list(run.glob(".checkpoint.pt.*"))


def test_interrupt_before_the_first_epoch_says_nothing_was_saved(tiny_cifar, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "make_loaders", interrupted)
    with pytest.raises(KeyboardInterrupt, match="nothing was saved; start again"):
        fit(replace(TINY, out=str(tmp_path / "run")), data=tiny_cifar)
    assert not (tmp_path / "run").exists()


def test_a_full_disk_keeps_the_previous_checkpoint(tiny_cifar, tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        fit(replace(TINY, out=str(tmp_path)), data=tiny_cifar, on_epoch_end=interrupt)
    saved = (tmp_path / "checkpoint.pt").read_bytes()

    real_mkstemp = tempfile.mkstemp

    def full_for_checkpoints(dir, prefix):
        if prefix.startswith(".checkpoint.pt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_mkstemp(dir=dir, prefix=prefix)

    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", full_for_checkpoints)
    with pytest.raises(UserError, match="No space left on device.*still holds epoch 1"):
        fit(replace(TINY, out=str(tmp_path)), data=tiny_cifar, resume=tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "checkpoint.pt", "history.json"]


@pytest.mark.parametrize("damage, message", [
    (lambda c: c.pop("optimizer"), "'optimizer' is missing"),
    (lambda c: c.update(epoch="2"), "'epoch' is missing or not int"),
    (lambda c: c["config"].update(epochs="ten"), "bad settings: --epochs must be int"),
    (lambda c: c["history"][0].update(test_acc=None), "epoch 1 has test_acc=None"),
    (lambda c: c.update(model=torch.nn.Linear(3, 2).state_dict()), "the weights of another model"),
    (lambda c: c.update(scheduler={"total_steps": 5}), "its schedule does not match"),
])
def test_a_malformed_or_foreign_checkpoint_is_a_user_error(tiny_cifar, tmp_path, damage, message):
    fit(replace(TINY, epochs=1, out=str(tmp_path)), data=tiny_cifar)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    damage(saved)
    torch.save(saved, tmp_path / "checkpoint.pt")
    with pytest.raises(UserError, match=message):
        fit(replace(TINY, epochs=1, out=str(tmp_path)), data=tiny_cifar, resume=tmp_path)


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "needs 'meta' and 'config'"),
    ('{"meta": {"device": "x"}, "config": {}, "epochs": [{"epoch": 2}]}', "epoch record 1 is missing"),
    ('{"meta": {"device": "x"}, "config": {}, "epochs": []}', "it has no epochs"),
    ("{", "JSONDecodeError"),
])
def test_a_malformed_history_is_a_user_error(tmp_path, content, message):
    (tmp_path / "history.json").write_text(content)
    with pytest.raises(UserError, match=message):
        load_history(tmp_path)


@pytest.mark.parametrize("change, message", [
    (dict(epochs=0), "--epochs must be positive"),
    (dict(batch_size=-1), "--batch-size must be positive"),
    (dict(max_lr=float("nan")), "--max-lr must be positive"),
    (dict(max_lr=float("inf")), "--max-lr must be positive"),
    (dict(seed=-1), "--seed must be from 0 to 2\\*\\*63-1"),
    (dict(subset=5), "--subset must be from 10 to 50000"),
    (dict(test_subset=10_001), "--test-subset must be from 10 to 10000"),
    (dict(num_workers=-2), "--num-workers must be 0 or more"),
    (dict(epochs=2.5), "--epochs must be int"),
    (dict(pipeline="dali"), "--pipeline must be one of"),
    (dict(precision="fp8"), "--precision must be one of"),
    (dict(device="tpu"), "unknown device"),
])
def test_bad_settings_are_user_errors(tiny_cifar, tmp_path, change, message):
    with pytest.raises(UserError, match=message):
        fit(replace(TINY, out=str(tmp_path), **change), data=tiny_cifar)
