"""Safe writes: a full disk, a file-size limit or a refused write keeps the previous file whole and says why."""

import errno
import os
import resource
import tempfile
from dataclasses import replace

import pytest

from helpers import UserError
from helpers.machinery.files import missing_folders, remove_empty, save_json
from running import invoke, one_line
from runs import TWO_EPOCHS, copy_of, train


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


def test_a_file_size_limit_while_saving_keeps_the_previous_checkpoint(two_epochs, tmp_path):
    run = copy_of(two_epochs["fast"][2], tmp_path)  # epoch 1 of 2 saved
    saved = (run / "checkpoint.pt").read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))  # history.json fits, the checkpoint does not
    try:
        result = invoke("train", "--resume", str(run), "--no-progress")  # as the command, in this process
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert "File too large" in one_line(result) and "still holds epoch 1" in one_line(result)
    assert (run / "checkpoint.pt").read_bytes() == saved
    assert sorted(p.name for p in run.iterdir()) == [".lock", "checkpoint.pt", "history.json"]


def test_a_refused_write_says_permission_not_space(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refused)
    with pytest.raises(UserError, match="Permission denied\\): make the folder writable, or choose another --out"):
        save_json(tmp_path / "history.json", {})


def test_remove_empty_removes_what_was_made_and_keeps_what_holds_anything(tmp_path):
    made = missing_folders(tmp_path / "a" / "b" / "c")  # c, b, a
    (tmp_path / "a" / "b").mkdir(parents=True)  # c never made: a stop within mkdir(parents=True)
    (tmp_path / "a" / "b" / "notes.txt").write_text("mine")
    remove_empty(made)
    assert (tmp_path / "a" / "b" / "notes.txt").exists()  # b holds a file: it and a stay
    (tmp_path / "a" / "b" / "notes.txt").unlink()
    remove_empty(made)
    assert list(tmp_path.iterdir()) == []


def test_a_file_written_over_keeps_its_mode_and_a_new_one_is_shared(tmp_path):
    private = tmp_path / "history.json"
    private.write_text("{}")
    private.chmod(0o600)  # the user's choice
    save_json(private, {"epochs": []})
    save_json(tmp_path / "new.json", {})
    assert (private.stat().st_mode & 0o777, (tmp_path / "new.json").stat().st_mode & 0o777) == (0o600, 0o644)
