"""A run folder: one owner at a time, nothing in it replaced unasked, a crash between the two saves repaired."""

import os
import subprocess
import sys
from dataclasses import asdict, replace

import pytest

from helpers import UserError, training
from helpers.config import TrainConfig
from helpers.machinery import run_folder
from helpers.machinery.checkpoint import load_checkpoint, load_history
from helpers.machinery.files import PARTIAL
from helpers.machinery.run_folder import RunFolder
from running import ROOT, SMOKE_RUN, invoke, one_line
from runs import TWO_EPOCHS, copy_of, interrupt, train, without_seconds


def test_existing_run_is_not_overwritten(two_epochs, smoke_data, tmp_path):
    run = copy_of(two_epochs["albumentations"][1], tmp_path)
    before = (run / "history.json").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        train(replace(TWO_EPOCHS, seed=5, out=str(run)), smoke_data)
    assert (run / "history.json").read_bytes() == before


def test_resume_into_a_folder_holding_another_run_is_refused(two_epochs, smoke_data, tmp_path):
    source = copy_of(two_epochs["albumentations"][2], tmp_path, "a")
    other = copy_of(two_epochs["fast"][1], tmp_path, "b")
    before = (other / "checkpoint.pt").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        train(replace(TWO_EPOCHS, out=str(other)), smoke_data, resume=source)
    assert (other / "checkpoint.pt").read_bytes() == before


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
    (run / f".checkpoint.pt{PARTIAL}x7k2q9ab").write_bytes(b"half a checkpoint")  # left by a kill mid-write
    resumed = train(replace(TWO_EPOCHS, out=str(run)), smoke_data, resume=run)  # nothing left to train
    assert load_history(run) == resumed
    assert without_seconds(resumed) == without_seconds(uninterrupted)
    assert not list(run.glob(".checkpoint.pt.*"))


def test_an_unwritable_run_folder_is_a_user_error():
    with pytest.raises(UserError, match="cannot write to run folder /proc/cannot-write-here"):
        RunFolder("/proc/cannot-write-here").open()


def test_a_folder_holding_only_a_history_is_not_overwritten(tmp_path):
    (tmp_path / "history.json").write_text('{"mine": 1}')
    assert "is not empty (it holds history.json)" in one_line(invoke("train", *SMOKE_RUN, "--out", str(tmp_path)))
    assert (tmp_path / "history.json").read_text() == '{"mine": 1}'


def test_overwrite_replaces_only_the_runs_own_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not empty .*notes.txt.*--overwrite"):
        RunFolder(tmp_path).open()
    run = RunFolder(tmp_path).open(overwrite=True)
    run.begin(TrainConfig(), "test device", "IEEE fp32", 1, 1)
    run.append({"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_acc": 0.5, "seconds": 1.0},
               {"model": {}})  # fmt: skip
    run.close()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "checkpoint.pt", "history.json", "notes.txt"]


HOLD_THE_FOLDER = """
import sys, time
from helpers.machinery.files import PARTIAL
from helpers.machinery.run_folder import RunFolder
folder = RunFolder(sys.argv[1]).open()  # held while this process lives
print("holding", flush=True)
time.sleep(600)
"""


def test_a_second_run_on_a_busy_folder_is_refused_and_a_killed_owner_leaves_no_lock(data_root, tmp_path):
    out = tmp_path / "run"
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_FOLDER, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert owner.stdout.readline() == "holding\n"
        second = invoke("train", *SMOKE_RUN, "--out", str(out), "--overwrite")
        assert f"in use by another run (process {owner.pid})" in one_line(second)
    finally:
        owner.kill()  # SIGKILL: no clean-up of its own
        owner.wait()
    with RunFolder(out).open():  # the killed owner's lock went with it
        pass


@pytest.mark.parametrize(
    "mine",
    [
        [".history.json.backup"],
        [".checkpoint.pt.old", "notes.md"],
        [".history.json.12345678.bak", "history.json"],
        [".history.json.20261207"],  # named as a save's temporary file was once, before it had a mark of its own
        [".checkpoint.pt.a1b2c3d4"],
    ],
    ids=[
        "a backup of a history",
        "a checkpoint of mine and notes",
        "a history and a look-alike",
        "a dated backup",
        "an old-style look-alike",
    ],  # fmt: skip
)
def test_a_refused_run_changes_nothing_in_the_folder(tmp_path, mine):
    for name in mine:
        (tmp_path / name).write_text(f"{name}: the user's")
    with pytest.raises(UserError, match="is not empty"):
        RunFolder(tmp_path).open()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(mine)  # no .lock either
    assert all((tmp_path / name).read_text() == f"{name}: the user's" for name in mine)


@pytest.mark.parametrize("depth", [0, 1, 3], ids=["an empty folder of the user's", "a new folder", "three"])
def test_a_run_stopped_before_its_first_epoch_leaves_the_folder_as_it_found_it(tmp_path, depth):
    out = tmp_path.joinpath(*[f"level{n}" for n in range(depth)])
    with pytest.raises(KeyboardInterrupt, match="nothing was saved; start again with the same command"):
        with RunFolder(out).open():
            raise KeyboardInterrupt  # as Ctrl-C before the first epoch commits
    assert list(tmp_path.iterdir()) == []  # every folder it made, and its .lock, gone
    with RunFolder(out).open():  # the same command is not refused
        pass


class StopWhileLookingForLeftovers:
    """Stands in for LEFTOVER: a stop (Ctrl-C, SIGTERM) once open() has made the folders and the .lock."""

    def fullmatch(self, name):
        raise KeyboardInterrupt


REAL_OPEN = RunFolder.open


def open_then_stop(folder, *args):
    """Stands in for RunFolder.open: a stop landing just as it returned."""
    REAL_OPEN(folder, *args)
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "owner, name, stand_in",
    [(run_folder, "LEFTOVER", StopWhileLookingForLeftovers()), (RunFolder, "open", open_then_stop)],
    ids=["while open() takes the folder", "as open() returns"],
)
def test_a_stop_while_the_run_takes_its_folder_leaves_it_as_it_found_it(
    smoke_data, tmp_path, monkeypatch, owner, name, stand_in
):
    monkeypatch.setattr(owner, name, stand_in)
    with pytest.raises(KeyboardInterrupt, match="nothing was saved; start again with the same command"):
        train(replace(TWO_EPOCHS, out=str(tmp_path / "a" / "b")), smoke_data)
    assert list(tmp_path.iterdir()) == []  # both folders it made, and its .lock, gone


def test_a_run_resumed_into_another_folder_writes_nothing_there_before_an_epoch_commits(
    two_epochs, smoke_data, tmp_path, monkeypatch
):
    source = copy_of(two_epochs["albumentations"][2], tmp_path, "a")
    other = copy_of(two_epochs["fast"][1], tmp_path, "b")
    before = {path.name: path.read_bytes() for path in other.iterdir() if path.name != ".lock"}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt, match="nothing was saved"):
        train(replace(TWO_EPOCHS, out=str(other)), smoke_data, resume=source, overwrite=True)
    assert {path.name: path.read_bytes() for path in other.iterdir() if path.name != ".lock"} == before


def test_resuming_a_finished_run_trains_and_writes_nothing(finished_run, tmp_path):
    run = copy_of(finished_run, tmp_path, "finished")
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    for out in ([], ["--out", str(tmp_path / "copy")]):
        result = invoke("train", "--resume", str(run), "--no-progress", *out)
        assert (
            result.returncode == 0
            and "holds a finished run (1 epochs): nothing to train, nothing written" in result.stdout
        )
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before and not (tmp_path / "copy").exists()


def test_a_saved_run_is_finished_unfinished_or_of_other_settings_in_one_place():
    config = replace(TWO_EPOCHS, pipeline="fast", precision="fp32")
    saved = asdict(config)
    assert run_folder.run_status(saved, 2, config) == run_folder.FINISHED
    assert run_folder.run_status(saved, 1, config) == run_folder.UNFINISHED
    elsewhere = replace(config, out="elsewhere", device="cuda", num_workers=4, progress=True)  # how, not what
    assert run_folder.run_status(saved, 2, elsewhere) == run_folder.FINISHED
    assert run_folder.run_status(saved, 2, replace(config, seed=2)) == run_folder.OTHER_SETTINGS
    assert run_folder.run_status(saved, 1, replace(config, epochs=1)) == run_folder.OTHER_SETTINGS


@pytest.mark.parametrize("mine", [b"my notes\n", b"pid 12 was here", b"\x00" * 100], ids=["notes", "words", "bytes"])
def test_a_lock_file_that_is_not_a_runs_is_never_written_over(tmp_path, mine):
    (tmp_path / ".lock").write_bytes(mine)
    with pytest.raises(UserError, match="holds a .lock that is not a run's lock"):
        RunFolder(tmp_path).open()
    assert [path.name for path in tmp_path.iterdir()] == [".lock"] and (tmp_path / ".lock").read_bytes() == mine
    (tmp_path / ".lock").unlink()
    (tmp_path / ".lock").symlink_to(tmp_path.parent / "elsewhere")  # a link is nobody's lock either
    with pytest.raises(UserError, match="not a run's lock"):
        RunFolder(tmp_path).open()


def test_a_users_dated_backup_is_kept_when_a_run_is_overwritten_and_stopped(two_epochs, smoke_data, tmp_path):
    run = copy_of(two_epochs["fast"][1], tmp_path)
    (run / ".history.json.20261207").write_text("my backup")
    (run / f".history.json{PARTIAL}q1w2e3r4").write_text("a killed save's")
    with pytest.raises(KeyboardInterrupt):
        train(replace(TWO_EPOCHS, pipeline="fast", out=str(run)), smoke_data, overwrite=True, on_epoch_end=interrupt)
    assert (run / ".history.json.20261207").read_text() == "my backup"
    assert not (run / f".history.json{PARTIAL}q1w2e3r4").exists()  # ours: removed
