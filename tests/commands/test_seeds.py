"""`python -m helpers seeds`: several seeds at once, one table, every run stopped by one signal."""

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from helpers import UserError
from helpers.commands.seeds import check_folders, default_jobs, hold_out_dir, interrupted, parse_seeds
from running import PAUSE_AT_TORCH_IMPORT, SMOKE_RUN, invoke, one_line, start


def test_seeds_are_parsed_as_ranges_and_lists():
    assert parse_seeds("1-8") == list(range(1, 9)) and parse_seeds("1-3,7") == [1, 2, 3, 7] and parse_seeds("5") == [5]


def test_seeds_refuse_too_many_seeds_a_bad_jobs_and_an_out_dir_that_is_a_file(tmp_path):
    with pytest.raises(UserError, match="more than 1000 seeds"):
        parse_seeds("0-9223372036854775807")
    assert "more than 1000 seeds" in one_line(invoke("seeds", "--seeds", "1-1001"))
    assert "--jobs must be from 1 to the number of seeds (2)" in one_line(
        invoke("seeds", "--seeds", "1-2", "--jobs", "3")
    )
    (tmp_path / "file").write_text("")
    result = invoke("seeds", "--seeds", "1", "--out-dir", str(tmp_path / "file"), *SMOKE_RUN)
    assert "cannot use --out-dir" in one_line(result)
    assert default_jobs(torch.device("cpu"), 8) == 1 and default_jobs(torch.device("cuda"), 3) == 3


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "--epochs must be from 1 to 10000, got 0"),
        (["--max-lr=nan"], "--max-lr must be positive and finite"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--out-dir", ""], "--out-dir must be a folder's name, got ''"),
    ],
)
def test_seeds_refuse_a_bad_flag_before_any_run_starts(tmp_path, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    result = invoke("seeds", "--seeds", "1-2", *SMOKE_RUN, *flags)
    assert message in one_line(result) and result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no folder, no log


def test_seeds_rerun_on_a_finished_folder_is_refused_before_touching_its_logs(finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "seed1")
    (tmp_path / "seed1.log").write_text("the finished run's log\n")
    result = invoke("seeds", "--seeds", "1", "--out-dir", str(tmp_path), *SMOKE_RUN)
    assert "seed1 already holds a run" in one_line(result)
    assert (tmp_path / "seed1.log").read_text() == "the finished run's log\n"


def test_seeds_train_at_once_and_print_one_table(tmp_path):
    result = invoke(  # seeds in this process, each run in its own
        "seeds",
        "--seeds",
        "1-2",
        "--jobs",
        "2",
        "--out-dir",
        str(tmp_path),
        *SMOKE_RUN,
        "--pipeline",
        "fast",
        "--subset=100",  # each run in a process of its own: the smallest run that still trains
        "--test-subset=100",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "| seed1 | 1 |" in result.stdout and "| seed2 | 1 |" in result.stdout and "over 2 runs: best" in result.stdout
    )
    first, second = (json.loads((tmp_path / f"seed{seed}" / "history.json").read_text()) for seed in (1, 2))
    assert (first["config"]["seed"], second["config"]["seed"]) == (1, 2)
    assert first["epochs"][0]["train_loss"] != second["epochs"][0]["train_loss"]  # two runs, not one twice


def running_trainings(out_dir) -> list[int]:
    """Processes training into `out_dir` (their command line names it)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it ended
            continue
        if b"train" in command and any(str(out_dir).encode() in part for part in command):
            found.append(int(proc.name))
    return found


def test_sigterm_to_seeds_stops_every_run_and_says_what_was_saved(tmp_path):
    # Each run pauses where it would import torch, its stop handlers in place (a sitecustomize its process finds
    # first, on the PYTHONPATH that seeds passes on): both under way, without the seconds two trainings take to start.
    hook, out_dir = tmp_path / "hook", tmp_path / "out"
    hook.mkdir()
    out_dir.mkdir()
    (hook / "sitecustomize.py").write_text(PAUSE_AT_TORCH_IMPORT)
    prelude = f"import os; os.environ['PYTHONPATH'] = {str(hook)!r} + os.pathsep + os.environ['PYTHONPATH']"
    process = start("seeds", "--seeds", "1-2", "--jobs", "2", "--out-dir", str(out_dir), *SMOKE_RUN, prelude=prelude)
    logs = [out_dir / f"seed{seed}.log" for seed in (1, 2)]

    def paused(log):
        return log.exists() and "paused" in log.read_text()

    deadline = time.monotonic() + 120
    while not all(paused(log) for log in logs) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(paused(log) for log in logs), [log.read_text() for log in logs if log.exists()]
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert "nothing was saved; start again with the same command" in one_line(result, status=143)
    assert running_trainings(out_dir) == []  # nothing left running
    assert list(out_dir.iterdir()) == []  # no log, no folder, no lock: as it was
    check_folders(out_dir, [1, 2], overwrite=False)  # so the same command is not refused


def test_an_interrupted_seeds_run_says_which_runs_kept_epochs_and_removes_the_logs_of_the_others(tmp_path):
    (tmp_path / "seed3").mkdir()
    (tmp_path / "seed3" / "checkpoint.pt").write_bytes(b"epoch 1")
    for seed in (3, 4):
        (tmp_path / f"seed{seed}.log").write_text("training on CPU\ninterrupted: ...\n")
    line = interrupted(tmp_path, seeds=[3, 4, 5], started=[3, 4])
    assert line == (
        f"interrupted: {tmp_path}/seed3 keeps its last finished epoch: continue it with python -m helpers train "
        f"--resume {tmp_path}/seed3; seeds 4, 5 saved nothing"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["seed3", "seed3.log"]


def test_an_interrupted_seeds_run_tells_finished_runs_from_runs_to_continue(two_epochs, tmp_path):
    _, finished, unfinished = two_epochs["fast"]
    for seed, run in ((11, finished), (12, finished), (13, unfinished), (14, unfinished)):
        shutil.copytree(run, tmp_path / f"seed{seed}")
    assert interrupted(tmp_path, seeds=[11, 12], started=[11, 12]) == (
        f"interrupted: {tmp_path}/seed11 {tmp_path}/seed12 finished "
        f"(their table: python -m helpers summary {tmp_path}/seed11 {tmp_path}/seed12)"
    )
    assert interrupted(tmp_path, seeds=[11, 13, 14, 15], started=[11, 13, 14, 15]) == (
        f"interrupted: {tmp_path}/seed11 finished (their table: python -m helpers summary {tmp_path}/seed11); "
        f"{tmp_path}/seed13, {tmp_path}/seed14 keep their last finished epoch: continue each with "
        f"python -m helpers train --resume {tmp_path}/seedN (N: 13, 14); seed 15 saved nothing"
    )


@pytest.mark.parametrize("flag", ["--res", "--resu=runs/x", "--se", "--ou=elsewhere"])
def test_seeds_refuse_per_seed_flags_abbreviated_too(flag):
    assert "are set per seed" in one_line(invoke("seeds", "--seeds", "1", flag, "x", *SMOKE_RUN))


def test_seeds_never_write_a_log_over_a_users_file_or_through_a_link(tmp_path):
    (tmp_path / "seed1.log").write_text("my notes")
    assert "seed1.log is there already" in one_line(
        invoke("seeds", "--seeds", "1", "--out-dir", str(tmp_path), *SMOKE_RUN)
    )
    assert (tmp_path / "seed1.log").read_text() == "my notes"
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("not the log's")
    (tmp_path / "seed2.log").symlink_to(outside)
    result = invoke("seeds", "--seeds", "2", "--out-dir", str(tmp_path), *SMOKE_RUN, "--overwrite")
    assert "seed2.log is there already" in one_line(result) and outside.read_text() == "not the log's"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["seed1.log", "seed2.log"]  # and no .seeds.lock left


def test_a_second_seeds_run_on_the_same_folder_is_refused(tmp_path):
    with hold_out_dir(tmp_path):  # as a first seeds run does, from start to end
        result = invoke("seeds", "--seeds", "1", "--out-dir", str(tmp_path), *SMOKE_RUN)
    assert "in use by another seeds run" in one_line(result) and not (tmp_path / "seed1.log").exists()


def test_seeds_on_a_read_only_out_dir_is_refused_in_one_line(read_only_folder):
    result = invoke("seeds", "--seeds", "1", "--out-dir", str(read_only_folder), *SMOKE_RUN)
    assert one_line(result) == (
        f"error: cannot use --out-dir {read_only_folder} (Read-only file system): the disk is read-only: "
        "choose another --out-dir"
    )
    assert list(read_only_folder.iterdir()) == []
