"""fit on the CPU: what it saves, that runs repeat and resume exactly, and that nothing saved is lost.

The runs use the SMOKE preset and its data (500 training images: about a second an epoch). Two-epoch
runs of both pipelines are trained once (`two_epochs`) and copied for every test that damages,
interrupts or resumes one.
"""

import errno
import math
import os
import shutil
import tempfile
from dataclasses import replace

import numpy as np
import pytest
import torch

from helpers import UserError, engine, run_folder
from helpers.bench import estimate
from helpers.checkpoint import load_checkpoint, load_history
from helpers.config import PIPELINES, PREVIEW, TrainConfig, smoke
from helpers.device import settle, sized_for
from helpers.engine import TrainingDiverged, divergence, fit, lr_range_test, one_cycle
from helpers.plots import lr_range_plot, schedule_plot
from helpers.run_folder import RunFolder

SMOKE = smoke(TrainConfig(device="cpu", progress=False))
TWO_EPOCHS = replace(SMOKE, epochs=2)


def train(config, data, resume=None, **kwargs):
    """fit, as the commands call it: settled config and device, the checkpoint loaded once."""
    return fit(*settle(config), data=data, resume=None if resume is None else load_checkpoint(resume), **kwargs)


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history["epochs"]]


def interrupt(record):
    raise KeyboardInterrupt


@pytest.fixture(scope="module")
def two_epochs(smoke_data, tmp_path_factory):
    """Per pipeline: (history, folder of the finished 2-epoch run, copy of that folder after epoch 1)."""
    runs = {}
    for pipeline in PIPELINES:
        whole, after_1 = tmp_path_factory.mktemp(f"whole-{pipeline}"), tmp_path_factory.mktemp(f"after1-{pipeline}")

        def keep_epoch_1(record, whole=whole, after_1=after_1):
            if record["epoch"] == 1:
                shutil.copytree(whole, after_1, dirs_exist_ok=True)

        history = train(replace(TWO_EPOCHS, pipeline=pipeline, out=str(whole)), smoke_data, on_epoch_end=keep_epoch_1)
        runs[pipeline] = history, whole, after_1
    return runs


def copy_of(folder, tmp_path, name="run"):
    shutil.copytree(folder, tmp_path / name)
    return tmp_path / name


def test_one_epoch_on_2000_images_beats_chance_and_saves_what_it_returns(learning_runs):
    history, folder = learning_runs["albumentations"]
    assert history["epochs"][0]["test_acc"] > 0.13  # chance is 0.10, sd 0.0095 on 1,000 test images: 3 sd above
    assert load_history(folder) == history
    assert history["meta"]["device"].startswith("CPU") and history["meta"]["train_images"] == 2000
    checkpoint = load_checkpoint(folder)  # weights_only=True
    assert checkpoint["epoch"] == 1 and checkpoint["history"] == history["epochs"]


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_an_interrupted_run_resumed_repeats_the_uninterrupted_one_and_another_seed_does_not(
    two_epochs, smoke_data, tmp_path, pipeline
):
    uninterrupted = two_epochs[pipeline][0]
    config = replace(TWO_EPOCHS, pipeline=pipeline, out=str(tmp_path / "parts"))
    with pytest.raises(KeyboardInterrupt):
        train(config, smoke_data, on_epoch_end=interrupt)
    assert load_checkpoint(tmp_path / "parts")["epoch"] == 1
    resumed = train(config, smoke_data, resume=tmp_path / "parts")
    assert without_seconds(resumed) == without_seconds(uninterrupted)  # a fresh epoch 1 and a resumed epoch 2
    assert load_history(tmp_path / "parts")["meta"]["resumed"][0]["at_epoch"] == 2
    with pytest.raises(KeyboardInterrupt):
        train(replace(config, seed=2, out=str(tmp_path / "seed2")), smoke_data, on_epoch_end=interrupt)
    assert load_history(tmp_path / "seed2")["epochs"][0]["train_loss"] != uninterrupted["epochs"][0]["train_loss"]


def test_resume_with_other_experiment_settings_is_refused(two_epochs, smoke_data, tmp_path):
    run = copy_of(two_epochs["albumentations"][2], tmp_path)
    with pytest.raises(UserError, match="epochs=2"):
        train(replace(TWO_EPOCHS, epochs=3, out=str(run)), smoke_data, resume=run)


def test_existing_run_is_not_overwritten(two_epochs, smoke_data, tmp_path):
    run = copy_of(two_epochs["albumentations"][1], tmp_path)
    before = (run / "history.json").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        train(replace(TWO_EPOCHS, seed=5, out=str(run)), smoke_data)
    assert (run / "history.json").read_bytes() == before


@pytest.mark.parametrize(
    "tensor, value",
    [
        ("block1.0.weight", float("nan")),  # the test loss becomes NaN too
        ("block1.1.running_var", float("inf")),  # only the BatchNorm statistics say so
    ],
)
def test_divergence_stops_the_run_and_keeps_the_last_good_epoch(
    two_epochs, smoke_data, tmp_path, monkeypatch, tensor, value
):
    run = copy_of(two_epochs["albumentations"][2], tmp_path)
    saved = (run / "checkpoint.pt").read_bytes()
    train_epoch = engine.Trainer.train_epoch

    def diverging(trainer, *args, **kwargs):  # epoch 2 ends with one tensor gone, as a diverged step leaves it
        result = train_epoch(trainer, *args, **kwargs)
        trainer.net.state_dict()[tensor].fill_(value)  # the state dict's tensors are the model's own
        return result

    monkeypatch.setattr(engine.Trainer, "train_epoch", diverging)
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2: .*lower --max-lr; .* still holds epoch 1"):
        train(replace(TWO_EPOCHS, out=str(run)), smoke_data, resume=run)
    assert (run / "checkpoint.pt").read_bytes() == saved
    assert len(load_history(run)["epochs"]) == 1


def test_an_exploding_but_finite_loss_is_divergence():
    model = torch.nn.Linear(2, 2)
    record = {"train_loss": 1.5, "test_loss": 1.6}
    assert divergence(model, record, first_loss=2.0, fp16=False) is None
    assert "above 20" in divergence(model, {**record, "test_loss": 25.0}, first_loss=2.0, fp16=False)
    assert "above 23" in divergence(
        model, {**record, "train_loss": 1e4}, first_loss=math.inf, fp16=False
    )  # epoch 1: ln 10
    assert "non-finite loss" in divergence(model, {**record, "nonfinite_steps": 1}, first_loss=2.0, fp16=False)
    assert (
        divergence(model, {**record, "nonfinite_steps": 1}, first_loss=2.0, fp16=True) is None
    )  # the scaler skipped it


def test_divergence_before_any_epoch_says_nothing_was_saved(smoke_data, tmp_path):
    few = replace(smoke_data, train_images=smoke_data.train_images[:64], train_labels=smoke_data.train_labels[:64])
    with pytest.raises(TrainingDiverged, match="no epoch has finished, so nothing was saved"):
        train(replace(SMOKE, max_lr=1e6, out=str(tmp_path / "run")), few)
    assert not (tmp_path / "run").exists()  # a failed start leaves no empty run folder


def test_resume_into_a_folder_holding_another_run_is_refused(two_epochs, smoke_data, tmp_path):
    source = copy_of(two_epochs["albumentations"][2], tmp_path, "a")
    other = copy_of(two_epochs["fast"][1], tmp_path, "b")
    before = (other / "checkpoint.pt").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        train(replace(TWO_EPOCHS, out=str(other)), smoke_data, resume=source)
    assert (other / "checkpoint.pt").read_bytes() == before


def test_a_run_folder_in_use_is_refused_and_freed_when_its_owner_ends(smoke_data, tmp_path):
    with RunFolder(tmp_path).open():
        with pytest.raises(UserError, match="in use by another run"):
            train(replace(SMOKE, out=str(tmp_path)), smoke_data)
    with RunFolder(tmp_path).open():  # released: another owner takes it
        pass


def test_a_crash_between_checkpoint_and_history_is_repaired_by_resume(two_epochs, smoke_data, tmp_path, monkeypatch):
    uninterrupted = two_epochs["albumentations"][0]
    run = copy_of(two_epochs["albumentations"][2], tmp_path)
    real_save_json = run_folder.save_json

    def crash_on_epoch_2(path, history):
        if len(history["epochs"]) == 2:
            raise SystemExit("killed")  # the process dies right after the checkpoint's rename
        real_save_json(path, history)

    monkeypatch.setattr(run_folder, "save_json", crash_on_epoch_2)
    with pytest.raises(SystemExit):
        train(replace(TWO_EPOCHS, out=str(run)), smoke_data, resume=run)
    monkeypatch.undo()
    assert len(load_history(run)["epochs"]) == 1 and load_checkpoint(run)["epoch"] == 2
    (run / ".checkpoint.pt.x7k2q9").write_bytes(b"half a checkpoint")  # left by a kill mid-write
    resumed = train(replace(TWO_EPOCHS, out=str(run)), smoke_data, resume=run)  # nothing left to train
    assert load_history(run) == resumed
    assert without_seconds(resumed) == without_seconds(uninterrupted)
    assert not list(run.glob(".checkpoint.pt.*"))


def test_interrupt_before_the_first_epoch_says_nothing_was_saved(smoke_data, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "make_loaders", interrupted)
    with pytest.raises(KeyboardInterrupt, match="nothing was saved; start again"):
        train(replace(SMOKE, out=str(tmp_path / "run")), smoke_data)
    assert not (tmp_path / "run").exists()


def test_a_full_disk_keeps_the_previous_checkpoint(two_epochs, smoke_data, tmp_path, monkeypatch):
    run = copy_of(two_epochs["albumentations"][2], tmp_path)
    saved = (run / "checkpoint.pt").read_bytes()
    real_mkstemp = tempfile.mkstemp

    def full_for_checkpoints(dir, prefix):
        if prefix.startswith(".checkpoint.pt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_mkstemp(dir=dir, prefix=prefix)

    monkeypatch.setattr(tempfile, "mkstemp", full_for_checkpoints)
    with pytest.raises(UserError, match="No space left on device.*still holds epoch 1"):
        train(replace(TWO_EPOCHS, out=str(run)), smoke_data, resume=run)
    assert (run / "checkpoint.pt").read_bytes() == saved
    assert sorted(p.name for p in run.iterdir()) == [".lock", "checkpoint.pt", "history.json"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda c: c.pop("optimizer"), "'optimizer' is missing"),
        (lambda c: c.update(epoch="2"), "'epoch' is missing or not int"),
        (lambda c: c["config"].update(epochs="ten"), "bad settings: --epochs must be int"),
        (lambda c: c["history"][0].update(test_acc=None), "epoch 1 has test_acc=None"),
        (lambda c: c.update(model=torch.nn.Linear(3, 2).state_dict()), "the weights of another model"),
        (lambda c: c.update(scheduler={"total_steps": 5}), "its schedule does not match"),
    ],
)
def test_a_malformed_or_foreign_checkpoint_is_a_user_error(two_epochs, smoke_data, tmp_path, damage, message):
    run = copy_of(two_epochs["albumentations"][2], tmp_path)
    saved = torch.load(run / "checkpoint.pt", weights_only=True)
    damage(saved)
    torch.save(saved, run / "checkpoint.pt")
    with pytest.raises(UserError, match=message):
        train(replace(TWO_EPOCHS, out=str(run)), smoke_data, resume=run)


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "needs 'meta' and 'config'"),
        ('{"meta": {"device": "x"}, "config": CONFIG, "epochs": [{"epoch": 2}]}', "epoch record 1 is missing"),
        ('{"meta": {"device": "x"}, "config": CONFIG, "epochs": []}', "it has no epochs"),
        ("{", "JSONDecodeError"),
    ],
)
def test_a_malformed_history_is_a_user_error(tmp_path, content, message):
    config = '{"epochs": 1, "batch_size": 64, "max_lr": 0.017, "momentum": 0.9, "seed": 1, "pipeline": "fast", "precision": "fp32"}'
    (tmp_path / "history.json").write_text(content.replace("CONFIG", config))
    with pytest.raises(UserError, match=message):
        load_history(tmp_path)


# Values whose message the command line tests (test_cli) do not already check.
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(max_lr=float("inf")), "--max-lr must be positive"),
        (dict(test_subset=10_001), "--test-subset must be from 10 to 10000"),
        (dict(num_workers=1000), "--num-workers must be from 0 to 256"),
        (dict(epochs=2.5), "--epochs must be int"),
        (dict(pipeline="dali"), "--pipeline must be one of"),
    ],
)
def test_bad_settings_are_user_errors(change, message):
    with pytest.raises(UserError, match=message):
        settle(replace(SMOKE, **change))


def test_fit_refuses_a_config_that_was_not_settled(smoke_data, tmp_path):
    with pytest.raises(ValueError, match="not settled"):
        fit(replace(SMOKE, out=str(tmp_path)), torch.device("cpu"), data=smoke_data)


def test_an_unwritable_run_folder_is_a_user_error():
    with pytest.raises(UserError, match="cannot write to run folder /proc/cannot-write-here"):
        RunFolder("/proc/cannot-write-here").open()


def test_corrupted_data_gives_one_line_and_leaves_no_run_folder(data_root, tmp_path):
    corrupted = tmp_path / "data" / "cifar-10-batches-py"
    corrupted.mkdir(parents=True)
    for path in (data_root / "cifar-10-batches-py").iterdir():
        (corrupted / path.name).symlink_to(path)
    (corrupted / "data_batch_3").unlink()
    (corrupted / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="^CIFAR-10 files in .* fail torchvision's MD5 check"):
        train(replace(SMOKE, data_root=str(tmp_path / "data"), out=str(tmp_path / "run")), data=None)
    assert not (tmp_path / "run").exists()  # a failed start leaves no empty run folder


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


def test_notebook_runs_are_sized_for_the_device():
    config = TrainConfig()
    assert sized_for(config, torch.device("cpu")) == replace(config, **PREVIEW)
    assert sized_for(config, torch.device("cuda")) == config  # the recipe: only the type is asked, no GPU needed
    assert sized_for(config, torch.device("cuda"), "smoke") == smoke(config)
    with pytest.raises(UserError, match="RUN must be one of"):
        sized_for(config, torch.device("cpu"), "full")


def test_the_estimate_before_training_includes_the_full_recipe_at_the_recipes_batch(smoke_data):
    config, device = settle(replace(SMOKE, batch_size=64))
    text = estimate(config, device, smoke_data)
    assert (
        text.startswith("about ")
        and "for 1 epoch(s) here" in text
        and "100 epochs of 50,000 images) would take" in text
    )
    assert "would take" not in estimate(*settle(SMOKE), smoke_data)  # batch 16: its rate says nothing of the recipe's


def test_the_lr_range_test_sweeps_exponentially_suggests_where_the_loss_falls_and_stops_when_it_climbs(smoke_data):
    config, device = settle(SMOKE)
    test = lr_range_test(config, device, smoke_data, start_lr=1e-4, end_lr=1.0, steps=30)
    np.testing.assert_allclose(test["lr"][[0, -1]], [1e-4, 1.0])
    np.testing.assert_allclose(np.diff(np.log(test["lr"])), np.log(1e4) / 29)  # exponential: equal steps in log(lr)
    assert np.isfinite(test["loss"]).all() and test["lr"][10] <= test["suggestion"] <= test["lr"][-6]
    runaway = lr_range_test(config, device, smoke_data, start_lr=1e-3, end_lr=1e4, steps=40)
    assert 17 <= len(runaway["lr"]) < 40 and not runaway["loss"][-1] < 4 * runaway["loss"].min()  # stopped: diverged
    with pytest.raises(UserError, match="diverged within 2 steps of 100: start the test lower"):
        lr_range_test(config, device, smoke_data, start_lr=1e2, end_lr=1e6, steps=30)
    assert test["ran_on"].startswith("CPU") and "batches of 16 from 500 images" in test["ran_on"]
    figure = lr_range_plot(test, chosen=0.017)
    assert [line.get_xdata()[0] for line in figure.axes[0].lines[1:]] == [test["suggestion"], 0.017]
