"""Bad input of every kind: one line that says what to do, nothing saved lost, nothing silently wrong.

The cases are #20's classes; those that need a process of their own (signals) are in test_cli.
"""

import errno
import shutil
from dataclasses import replace

import pytest
import torch
import torchvision.datasets.cifar

from commands import SMOKE_RUN, invoke, one_line
from helpers import UserError, colab_links
from helpers.checkpoint import load_checkpoint, load_history
from helpers.colab_links import repository_url, rewrite
from helpers.config import TrainConfig
from helpers.data import load_cifar10
from helpers.files import save_json
from helpers.run_folder import RunFolder
from helpers.seeds import default_jobs, parse_seeds
from helpers.summary import run_names

LONG = "x" * 300  # longer than the 255 bytes a file name may have


@pytest.fixture(scope="module")
def finished_run(learning_runs):
    """A run folder helpers.train finished (one epoch), to copy and damage."""
    return learning_runs["fast"][1]


def copy_of(folder, tmp_path):
    shutil.copytree(folder, tmp_path / "run")
    return tmp_path / "run"


# Data loss: a folder that holds anything is used only with --overwrite, and then only the run's own files change.


def test_a_folder_holding_only_a_history_is_not_overwritten(tmp_path):
    (tmp_path / "history.json").write_text('{"mine": 1}')
    assert "is not empty (it holds history.json)" in one_line(
        invoke("helpers.train", *SMOKE_RUN, "--out", str(tmp_path))
    )
    assert (tmp_path / "history.json").read_text() == '{"mine": 1}'


def test_overwrite_replaces_only_the_runs_own_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not empty .*notes.txt.*--overwrite"):
        RunFolder(tmp_path).open()
    run = RunFolder(tmp_path).open(overwrite=True)
    run.begin(TrainConfig(), "test device", 1, 1)
    run.append({"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_acc": 0.5, "seconds": 1.0},
               {"model": {}})  # fmt: skip
    run.close()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "checkpoint.pt", "history.json", "notes.txt"]


def test_seeds_rerun_on_a_finished_folder_is_refused_before_touching_its_logs(finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "seed1")
    (tmp_path / "seed1.log").write_text("the finished run's log\n")
    result = invoke("helpers.seeds", "--seeds", "1", "--out-dir", str(tmp_path), *SMOKE_RUN)
    assert "seed1 already holds a run" in one_line(result)
    assert (tmp_path / "seed1.log").read_text() == "the finished run's log\n"


# Silently wrong: what is loaded is checked, in range and finite.


def damaged_checkpoint(folder, tmp_path, damage):
    run = copy_of(folder, tmp_path)
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    damage(checkpoint)
    torch.save(checkpoint, run / "checkpoint.pt")
    return run


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
    assert message in one_line(invoke("helpers.train", "--resume", str(run)))
    assert (run / "history.json").read_bytes() == history  # refused before anything was rewritten


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
    assert "RecursionError" in one_line(invoke("helpers.summary", str(tmp_path)))


def test_a_history_with_a_number_too_long_to_read_is_one_line(tmp_path):
    (tmp_path / "history.json").write_text('{"meta": {"seed": ' + "1" * 5000 + "}}")  # past Python's 4,300 digits
    assert "cannot read history" in one_line(invoke("helpers.summary", str(tmp_path)))


def test_summary_names_every_run_apart(tmp_path, monkeypatch):
    assert run_names(["runs/a", "other/b/"]) == ["a", "b"]
    assert run_names(["a/run", "b/run"]) == ["a/run", "b/run"]  # the same folder name twice: the paths
    monkeypatch.chdir(tmp_path)
    assert run_names(["."]) == [tmp_path.name]


# One line, never a traceback, for any input.


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", str(10**400)], "--epochs must be from 1 to 10000, got a 401-digit number"),
        (["--batch-size", str(10**400)], "--batch-size must be from 1 to 50000"),
        (["--out", LONG], "cannot write to run folder"),
        (["--resume", LONG], "cannot use"),
    ],
    ids=["huge epochs", "huge batch", "long --out", "long --resume"],
)
def test_train_refuses_huge_numbers_and_long_names_in_one_line(args, message):
    assert message in one_line(invoke("helpers.train", *SMOKE_RUN, *args))


def test_summary_of_a_long_name_is_one_line():
    assert "cannot" in one_line(invoke("helpers.summary", LONG))


def test_seeds_refuse_too_many_seeds_a_bad_jobs_and_an_out_dir_that_is_a_file(tmp_path):
    with pytest.raises(UserError, match="more than 1000 seeds"):
        parse_seeds("0-9223372036854775807")
    assert "more than 1000 seeds" in one_line(invoke("helpers.seeds", "--seeds", "1-1001"))
    assert "--jobs must be from 1 to the number of seeds (2)" in one_line(
        invoke("helpers.seeds", "--seeds", "1-2", "--jobs", "3")
    )
    (tmp_path / "file").write_text("")
    result = invoke("helpers.seeds", "--seeds", "1", "--out-dir", str(tmp_path / "file"), *SMOKE_RUN)
    assert "cannot use --out-dir" in one_line(result)
    assert default_jobs(["--device", "cpu"], 8) == 1 and default_jobs(["--device=cpu"], 8) == 1


@pytest.mark.parametrize(
    "pyproject, message",
    [
        ('[project]\nname = "x"\n', "has no \\[project.urls\\] Repository"),
        ("[project.urls]\nRepository = 42\n", "must be https://github.com/OWNER/REPO, got 42"),
        ('[project.urls]\nRepository = "https://github.com/a/b?x=1"\n', "must be https://github.com/OWNER/REPO"),
        ('[project.urls]\nRepository = "https://github.com/a/b)[x](javascript:alert(1))"\n', "must be https"),
        ('[project.urls]\nRepository = "https://github.com/a/b\\nc"\n', "must be https"),
        ('[project.urls]\nRepository = "https://gitlab.com/a/b"\n', "must be https://github.com"),
    ],
)
def test_colab_links_take_only_a_github_repository_address(tmp_path, pyproject, message):
    (tmp_path / "pyproject.toml").write_text(pyproject)
    with pytest.raises(UserError, match=message):
        repository_url(tmp_path / "pyproject.toml")


def test_colab_links_read_the_placeholder_with_or_without_git_as_unknown(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/OWNER/REPO.git"\n')
    assert repository_url(tmp_path / "pyproject.toml") is None
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/someone/cnn.git"\n')
    assert repository_url(tmp_path / "pyproject.toml") == "https://github.com/someone/cnn"


@pytest.mark.parametrize("content", ["{not json", '{"cells": []}', '{"nbformat": 4}'])
def test_colab_links_refuse_a_notebook_that_is_not_one(tmp_path, monkeypatch, content):
    (tmp_path / "01_x.ipynb").write_text(content)
    with pytest.raises(UserError, match="is not a notebook with cells"):
        rewrite(tmp_path / "01_x.ipynb", None)
    monkeypatch.setattr(colab_links, "NOTEBOOKS", tmp_path)
    assert "is not a notebook with cells" in one_line(invoke("helpers.colab_links"))


# Messages that say what happened.


def test_a_refused_write_says_permission_not_space(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refused)
    with pytest.raises(UserError, match="Permission denied\\): make the folder writable, or choose another --out"):
        save_json(tmp_path / "history.json", {})


def test_an_unreadable_cifar_file_says_so_not_md5(data_root, tmp_path, monkeypatch):
    for path in (data_root / "cifar-10-batches-py").iterdir():
        (tmp_path / "cifar-10-batches-py").mkdir(exist_ok=True)
        (tmp_path / "cifar-10-batches-py" / path.name).symlink_to(path)

    def unreadable(path, md5=None):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", unreadable)
    with pytest.raises(UserError, match="cannot be read \\(Permission denied: .*: make them readable") as error:
        load_cifar10(tmp_path, download=False)
    assert "MD5" not in str(error.value)


def test_an_unsettled_config_is_refused_by_the_trainer():
    from helpers.engine import Trainer
    from helpers.model import Net

    with pytest.raises(ValueError, match="not settled"):
        Trainer(Net(), torch.device("cpu"), replace(TrainConfig(), precision="auto"))
