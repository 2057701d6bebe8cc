"""A saved run read back: a checkpoint or history that is damaged, foreign or out of range is refused in one line."""

import errno
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from helpers import UserError
from helpers.machinery.checkpoint import load_checkpoint, load_history
from helpers.machinery.files import save_json
from helpers.machinery.run_folder import saved_meta
from running import invoke, one_line
from runs import TWO_EPOCHS, copy_of, damaged_checkpoint, train


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda c: c.pop("optimizer"), "'optimizer' is missing"),
        (lambda c: c.update(epoch="2"), "'epoch' is missing or not int"),
        (lambda c: c["config"].update(epochs="ten"), "bad settings: --epochs must be int"),
        (lambda c: c["history"][0].update(test_acc=None), "epoch 1 has test_acc=None"),
        (lambda c: c.update(model=torch.nn.Linear(3, 2).state_dict()), "the weights of another model"),
        (lambda c: c.update(scheduler={"total_steps": 5}), "its schedule does not match"),
        (lambda c: c["scheduler"].update(last_epoch=c["scheduler"]["last_epoch"] - 3), "its schedule took"),
        (lambda c: c["scheduler"].update(last_epoch=c["scheduler"]["last_epoch"] * 2), "its schedule took"),
        # What load_state_dict takes without a look: checked before an epoch is spent on it.
        (
            lambda c: c["optimizer"]["state"][0].update(momentum_buffer=torch.zeros(3)),
            "momentum buffer of shape \\(3,\\)",
        ),
        (lambda c: c["optimizer"]["state"][5]["momentum_buffer"].fill_(float("inf")), "is not finite"),
        (
            lambda c: c["optimizer"]["param_groups"][0].update(lr=float("nan")),
            "learning rate or momentum is not a finite",
        ),
        (
            lambda c: c["optimizer"]["param_groups"][0].update(momentum="0.9"),
            "learning rate or momentum is not a finite",
        ),
        # Settings the recipe does not have, which would train something else under its name.
        (lambda c: c["optimizer"]["param_groups"][0].update(nesterov=True), "its optimizer has nesterov=True"),
        (lambda c: c["optimizer"]["param_groups"][0].update(weight_decay=0.5), "its optimizer has weight_decay=0.5"),
        (
            lambda c: c["optimizer"]["param_groups"][0].update(dampening=0.1, maximize=True),
            "dampening=0.1, maximize=True",
        ),
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
    "damage, message",
    [
        (lambda c: [t.fill_(float("nan")) for t in c["model"].values() if t.is_floating_point()], "not finite"),
        (lambda c: c.update(meta="x"), "its meta names no device"),
        (lambda c: c["meta"].update(resumed=5), "resumed entries are malformed"),
        (lambda c: c["meta"].pop("device"), "its meta names no device"),
        (lambda c: c["config"].update(epochs=10**400), "--epochs must be from 1 to 10000, got a 401-digit number"),
        (lambda c: c["history"][0].update(test_acc=5.0), "epoch 1 has test_acc=5.0"),
    ],
    ids=["nan weights", "meta not a dict", "resumed not a list", "no device", "huge epochs", "accuracy 500%"],
)
def test_a_damaged_checkpoint_is_refused_when_loaded(finished_run, tmp_path, damage, message):
    run = damaged_checkpoint(finished_run, tmp_path, damage)
    history = (run / "history.json").read_bytes()
    with pytest.raises(UserError, match=message):
        load_checkpoint(run)
    assert message in one_line(invoke("train", "--resume", str(run)))
    assert (run / "history.json").read_bytes() == history  # refused before anything was rewritten


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


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda h: h["epochs"][0].update(test_acc=5.0), "test_acc=5.0"),
        (lambda h: h["epochs"][0].update(test_acc=-0.5), "test_acc=-0.5"),
        (lambda h: h["epochs"][0].update(seconds=-100), "seconds=-100"),
        (lambda h: h.update(config={}), "its config lacks epochs"),
        (lambda h: h["config"].update(precision="auto"), "never settled"),
        (lambda h: h["config"].update(batch_size=10**400), "--batch-size must be from 1 to 50000"),
        (lambda h: h["meta"].update(resumed=[{"at_epoch": "2"}]), "resumed entries are malformed"),
    ],
)
def test_a_history_out_of_range_or_incomplete_is_refused(finished_run, tmp_path, change, message):
    history = load_history(finished_run)
    change(history)
    save_json(tmp_path / "history.json", history)
    with pytest.raises(UserError, match=message):
        load_history(tmp_path)


def test_a_history_nested_too_deeply_is_one_line(tmp_path):
    (tmp_path / "history.json").write_text("[" * 100_000)
    assert "RecursionError" in one_line(invoke("summary", str(tmp_path)))


def test_a_history_with_a_number_too_long_to_read_is_one_line(tmp_path):
    (tmp_path / "history.json").write_text('{"meta": {"seed": ' + "1" * 5000 + "}}")  # past Python's 4,300 digits
    assert "cannot read history" in one_line(invoke("summary", str(tmp_path)))


def test_a_malformed_history_gives_one_line(tmp_path):
    (tmp_path / "history.json").write_text(json.dumps({"meta": {}, "config": {}, "epochs": []}))
    assert "is not a history written by python -m helpers train" in one_line(invoke("summary", str(tmp_path)))


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_what_is_not_a_history_or_checkpoint_file_is_refused_before_it_is_read(tmp_path, kind):
    for name in ("history.json", "checkpoint.pt"):
        path = tmp_path / name
        if kind == "fifo":
            os.mkfifo(path)  # reading it would wait for a writer forever
        elif kind == "device":
            path.symlink_to("/dev/zero")  # reading it would never end
        else:
            with open(path, "wb") as file:
                file.truncate(300 * 2**20)  # sparse: no disk used
    expected = "not a regular file" if kind != "huge" else "314,572,800 bytes"
    assert expected in one_line(invoke("summary", str(tmp_path)))
    assert expected in one_line(invoke("train", "--resume", str(tmp_path)))


def test_a_checkpoint_is_checked_to_be_its_historys_run(two_epochs, finished_run, tmp_path):
    whole = two_epochs["fast"][1]
    assert load_checkpoint(whole, load_history(whole))["epoch"] == 2
    with pytest.raises(UserError, match="is not the checkpoint of the history beside it \\(2 and 1 epochs"):
        load_checkpoint(whole, load_history(finished_run))
    mixed = copy_of(whole, tmp_path)
    shutil.copy(two_epochs["albumentations"][1] / "history.json", mixed / "history.json")  # same length, other run
    with pytest.raises(UserError, match="or other records"):
        load_checkpoint(mixed, load_history(mixed))


def test_a_checkpoint_without_provenance_takes_none_from_another_runs_history(two_epochs, tmp_path):
    run = damaged_checkpoint(two_epochs["fast"][2], tmp_path, lambda c: c.pop("meta"))  # as saved before meta
    assert saved_meta(load_checkpoint(run)) == load_history(run)["meta"]  # its own history's
    shutil.copy(two_epochs["albumentations"][2] / "history.json", run / "history.json")
    assert saved_meta(load_checkpoint(run)) is None  # another run's: not this run's command or start


def test_a_checkpoint_the_system_will_not_read_is_called_unreadable_not_damaged(finished_run, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")  # what a file without read permission gives a non-root user

    monkeypatch.setattr(torch, "load", refused)
    with pytest.raises(UserError, match="\\(Permission denied\\): make it readable$"):
        load_checkpoint(finished_run)


@pytest.mark.parametrize("refused", ["history.json", "the folder"])
def test_a_history_the_system_refuses_to_read_is_to_be_made_readable_not_replaced(
    finished_run, tmp_path, monkeypatch, refused
):
    run = copy_of(finished_run, tmp_path)
    history = run / "history.json"
    method = "read_text" if refused == "history.json" else "stat"  # chmod 000 on the file, or on its folder
    call = getattr(Path, method)

    def refusing(path, *args, **kwargs):  # as chmod 000 does, for a user other than root (as the tests may be)
        if path == history:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return call(path, *args, **kwargs)

    monkeypatch.setattr(Path, method, refusing)
    message = one_line(invoke("summary", str(run)))
    assert message == f"error: cannot read history {history} (Permission denied): make it readable"
