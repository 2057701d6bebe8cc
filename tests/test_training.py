"""fit on the CPU: what it saves, that runs repeat and resume exactly, and when it stops."""

import math
from dataclasses import replace

import pytest
import torch

from helpers import UserError, training
from helpers.analysis import trained_model
from helpers.config import PIPELINES
from helpers.machinery.checkpoint import load_checkpoint, load_history
from helpers.pipelines import AlbumentationsLoader, DeviceLoader, make_loaders
from helpers.training import Trainer, TrainingDiverged, divergence, epoch_seed, settle
from runs import SMOKE_CONFIG, TWO_EPOCHS, copy_of, interrupt, train, without_seconds


def test_a_run_saves_what_it_returns(learning_runs):
    history, folder = learning_runs["albumentations"]  # that it learns: tests/test_pipelines.py, for both pipelines
    assert load_history(folder) == history
    assert history["meta"]["device"].startswith("CPU") and history["meta"]["train_images"] == 1000
    assert history["meta"]["fp32"] == "IEEE fp32"  # what fp32 arithmetic was: TF32 on a GPU would say so
    checkpoint = load_checkpoint(folder)  # weights_only=True
    assert checkpoint["epoch"] == 1 and checkpoint["history"] == history["epochs"]


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_an_interrupted_run_resumed_repeats_the_uninterrupted_one_and_another_seed_does_not(
    two_epochs, smoke_data, tmp_path, pipeline
):
    uninterrupted, _, after_epoch_1 = two_epochs[pipeline]  # the run, and a copy of its folder after epoch 1
    config = replace(TWO_EPOCHS, pipeline=pipeline, out=str(copy_of(after_epoch_1, tmp_path, "parts")))
    assert load_checkpoint(tmp_path / "parts")["epoch"] == 1
    # Another worker count (albumentations) changes nothing: each batch's draws are seeded by its images.
    resumed = train(replace(config, num_workers=2), smoke_data, resume=tmp_path / "parts")
    assert without_seconds(resumed) == without_seconds(uninterrupted)  # a fresh epoch 1 and a resumed epoch 2
    assert load_history(tmp_path / "parts")["meta"]["resumed"][0]["at_epoch"] == 2
    with pytest.raises(KeyboardInterrupt):
        train(replace(config, seed=2, out=str(tmp_path / "seed2")), smoke_data, on_epoch_end=interrupt)
    assert load_history(tmp_path / "seed2")["epochs"][0]["train_loss"] != uninterrupted["epochs"][0]["train_loss"]


def test_resume_with_other_experiment_settings_is_refused(two_epochs, smoke_data, tmp_path):
    run = copy_of(two_epochs["albumentations"][2], tmp_path)
    with pytest.raises(UserError, match="epochs=2"):
        train(replace(TWO_EPOCHS, epochs=3, out=str(run)), smoke_data, resume=run)


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
    train_epoch = training.train_epoch

    def diverging(trainer, *args, **kwargs):  # epoch 2 ends with one tensor gone, as a diverged step leaves it
        result = train_epoch(trainer, *args, **kwargs)
        trainer.model.state_dict()[tensor].fill_(value)  # the state dict's tensors are the model's own
        return result

    monkeypatch.setattr(training, "train_epoch", diverging)
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
        train(replace(SMOKE_CONFIG, max_lr=1e6, out=str(tmp_path / "run")), few)
    assert not (tmp_path / "run").exists()  # a failed start leaves no empty run folder


def test_interrupt_before_the_first_epoch_says_nothing_was_saved(smoke_data, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "make_loaders", interrupted)
    with pytest.raises(KeyboardInterrupt, match="nothing was saved; start again"):
        train(replace(SMOKE_CONFIG, out=str(tmp_path / "run")), smoke_data)
    assert not (tmp_path / "run").exists()


def test_corrupted_data_gives_one_line_and_leaves_no_run_folder(data_root, tmp_path):
    corrupted = tmp_path / "data" / "cifar-10-batches-py"
    corrupted.mkdir(parents=True)
    for path in (data_root / "cifar-10-batches-py").iterdir():
        (corrupted / path.name).symlink_to(path)
    (corrupted / "data_batch_3").unlink()
    (corrupted / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="^CIFAR-10 files in .* fail torchvision's MD5 check"):
        train(replace(SMOKE_CONFIG, data_root=str(tmp_path / "data"), out=str(tmp_path / "run")), data=None)
    assert not (tmp_path / "run").exists()  # a failed start leaves no empty run folder


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda run: (run / "history.json").write_text('{"meta": {'), "damaged: JSONDecodeError"),
        (lambda run: (run / "history.json").unlink(), "missing"),
        (lambda run: (run / "history.json").write_text('{"meta": {}, "config": {}}'), "its meta names no device"),
    ],
    ids=["cut", "missing beside its checkpoint", "no device"],
)
def test_notebook_4_names_a_history_it_cannot_use_in_its_own_terms_and_keeps_the_run(
    two_epochs, smoke_data, tmp_path, damage, problem
):
    run = copy_of(two_epochs["fast"][2], tmp_path)
    damage(run)
    kept = {path.name: path.read_bytes() for path in run.iterdir()}
    config = replace(TWO_EPOCHS, pipeline="fast", out=str(run))
    with pytest.raises(UserError) as error:
        training.fit_or_load(settle(config), smoke_data)
    assert str(error.value) == (
        f"the history of the run in RUN_FOLDER {run} cannot be used ({problem}): "
        "set OVERWRITE = True to replace the run, or change RUN_FOLDER"
    )
    assert {path.name: path.read_bytes() for path in run.iterdir()} == kept
    replaced = training.fit_or_load(settle(replace(config, epochs=1)), smoke_data, overwrite=True)  # as asked
    assert load_history(run) == replaced and len(replaced["epochs"]) == 1


def test_training_shows_its_progress_on_stdout(smoke_data, tmp_path, capsys):
    train(replace(SMOKE_CONFIG, progress=True, out=str(tmp_path / "run")), smoke_data)
    captured = capsys.readouterr()
    assert "epoch 1: 100%" in captured.out and not captured.err  # stderr is pink in a notebook


def test_notebook_4_loads_a_finished_run_continues_an_unfinished_one_and_replaces_another_only_when_told(
    two_epochs, smoke_data, tmp_path
):
    finished = copy_of(two_epochs["fast"][1], tmp_path, "finished")
    saved = (finished / "checkpoint.pt").read_bytes()
    config = replace(TWO_EPOCHS, pipeline="fast", out=str(finished))
    assert training.fit_or_load(settle(config), smoke_data) == load_history(finished)  # loaded, not trained
    assert (finished / "checkpoint.pt").read_bytes() == saved
    with pytest.raises(UserError, match="holds a run of other settings: set OVERWRITE = True"):
        training.fit_or_load(settle(replace(config, seed=7)), smoke_data)
    assert (finished / "checkpoint.pt").read_bytes() == saved
    replaced = training.fit_or_load(settle(replace(config, seed=7)), smoke_data, overwrite=True)
    assert replaced["config"]["seed"] == 7 and load_checkpoint(finished)["config"]["seed"] == 7
    unfinished = copy_of(two_epochs["fast"][2], tmp_path, "unfinished")
    continued = training.fit_or_load(settle(replace(config, out=str(unfinished))), smoke_data)
    assert without_seconds(continued) == without_seconds(two_epochs["fast"][0])  # epoch 2 trained, as in one go


def test_each_epoch_draws_from_its_own_seed(smoke_data, tmp_path, monkeypatch):
    seeds = []
    for loader in (AlbumentationsLoader, DeviceLoader):
        real = loader.set_seed
        monkeypatch.setattr(loader, "set_seed", lambda self, seed, real=real: seeds.append(seed) or real(self, seed))
    small = replace(smoke_data, train_images=smoke_data.train_images[:64], train_labels=smoke_data.train_labels[:64])
    for pipeline in PIPELINES:
        seeds.clear()
        train(replace(TWO_EPOCHS, pipeline=pipeline, out=str(tmp_path / pipeline)), small)
        assert seeds == [epoch_seed(1, 1), epoch_seed(1, 2)] and seeds[0] != seeds[1]


def test_each_epochs_test_figures_are_the_saved_model_on_the_test_images(learning_runs, small_cifar):
    for history, folder in learning_runs.values():
        checkpoint = load_checkpoint(folder)
        run = settle(checkpoint.config)
        _, test_loader = make_loaders(small_cifar, run)
        loss, accuracy = Trainer(trained_model(checkpoint), run).evaluate(test_loader)
        last = history["epochs"][-1]
        assert accuracy == last["test_acc"] and loss == pytest.approx(last["test_loss"], rel=1e-6)
