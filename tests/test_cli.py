"""The commands as a user runs them: one line and exit status 2 for every bad input, never a traceback.

Most cases call a command's `main` in this process (`invoke`): the code that `python -m` runs, without
the seconds of a new interpreter importing torch. Signals, resource limits, a killed owner and runs
side by side need processes of their own (`start`, `run`).
"""

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from commands import ROOT, SMOKE_RUN, invoke, one_line, run, start
from helpers import UserError
from helpers.checkpoint import load_checkpoint
from helpers.config import TrainConfig, smoke
from helpers.device import settle
from helpers.engine import fit
from helpers.run_folder import RunFolder, check_resumable
from helpers.train import build_parser, config_from_args


@pytest.mark.parametrize(
    "module, flags",
    [
        (
            "helpers.train",
            ("--epochs", "--batch-size", "--max-lr", "--seed", "--precision", "--pipeline", "--resume", "--smoke"),
        ),
        ("helpers.bench", ("--steps", "--repeats", "--precision", "--dry-run", "--out")),
        ("helpers.summary", ("RUN",)),
        ("helpers.seeds", ("--seeds", "--out-dir")),
        ("helpers.colab_links", ("usage",)),
    ],
)
def test_every_command_explains_itself_with_help(module, flags):
    result = run(module, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage:") and not result.stderr
    assert all(flag in result.stdout for flag in flags)


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("helpers.train", ["--epochs", "0"], "--epochs must be from 1 to 10000"),
        ("helpers.train", ["--batch-size", "-64"], "--batch-size must be from 1 to 50000"),
        ("helpers.train", ["--max-lr", "nan"], "--max-lr must be positive and finite"),
        ("helpers.train", ["--seed", "-1"], "--seed must be from 0 to 2**63-1"),
        ("helpers.train", ["--subset", "5"], "--subset must be from 10 to 50000"),
        ("helpers.train", ["--precision", "fp8"], "--precision must be one of"),
        ("helpers.train", ["--device", "quantum"], "--device must be auto, cpu, cuda or cuda:N"),
        ("helpers.train", ["--epochs", "ten"], "invalid int value"),
        ("helpers.train", ["--resume", "/nonexistent/run"], "no checkpoint at"),
        ("helpers.bench", ["--repeats", "0"], "--steps, --warmup and --repeats must be at least 1"),
        ("helpers.bench", ["--batch-size", "0"], "--batch-size must be from 1 to 50000"),
        ("helpers.bench", ["--num-workers", "-1", "--dry-run"], "--num-workers must be from 0 to 256"),
        (
            "helpers.bench",
            ["--out", "/proc/nope/bench.json", "--data-root", "/nonexistent"],
            "cannot write to the folder of --out",
        ),
        ("helpers.seeds", ["--seeds", "3-1"], "--seeds must name distinct seeds"),
        ("helpers.seeds", ["--seeds", "one"], "--seeds must look like 1-8"),
        ("helpers.seeds", ["--seed", "4"], "--seed, --out and --resume are set per seed"),
    ],
)
def test_bad_values_give_one_line_and_exit_status_2(module, args, message):
    assert message in one_line(invoke(module, *args))


def test_a_short_run_prints_best_and_last_accuracy_and_where_results_are(data_root, tmp_path):
    out = tmp_path / "run"
    result = invoke("helpers.train", *SMOKE_RUN, "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    first_line, last_line = lines[0], lines[-1]
    assert first_line.startswith("training on CPU") and "1 epoch(s) of 500 images" in first_line
    assert last_line.startswith("best test accuracy") and str(out) in last_line


def test_flags_given_win_over_the_smoke_preset():
    config = config_from_args(build_parser().parse_args(["--smoke", "--epochs", "3", "--batch-size", "32"]))
    assert (config.epochs, config.batch_size, config.subset) == (3, 32, smoke(TrainConfig()).subset)


def test_a_resumed_run_keeps_its_settings_and_takes_the_flags_given(learning_runs):
    folder = learning_runs["fast"][1]
    resume = load_checkpoint(folder)
    config = config_from_args(build_parser().parse_args(["--resume", str(folder), "--num-workers", "3"]), resume)
    assert config.experiment() == TrainConfig.from_dict(resume["config"]).experiment()
    assert (config.num_workers, config.out) == (3, str(folder))
    changed = config_from_args(build_parser().parse_args(["--resume", str(folder), "--epochs", "2"]), resume)
    with pytest.raises(UserError, match="made with epochs=1"):
        check_resumable(resume, changed)


HOLD_THE_FOLDER = """
import sys, time
from helpers.run_folder import RunFolder
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
        second = invoke("helpers.train", *SMOKE_RUN, "--out", str(out), "--overwrite")
        assert f"in use by another run (process {owner.pid})" in one_line(second)
    finally:
        owner.kill()  # SIGKILL: no clean-up of its own
        owner.wait()
    with RunFolder(out).open():  # the killed owner's lock went with it
        pass


def test_a_file_size_limit_while_saving_keeps_the_previous_checkpoint(data_root, smoke_data, tmp_path):
    config = replace(smoke(TrainConfig(device="cpu", pipeline="fast", progress=False)), epochs=2, out=str(tmp_path))

    def stop_after_epoch_1(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(*settle(config), data=smoke_data, on_epoch_end=stop_after_epoch_1)
    saved = (tmp_path / "checkpoint.pt").read_bytes()

    def limit_files_to_64_kib():  # history.json fits, the checkpoint does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    result = run(
        "helpers.train",
        "--resume",
        str(tmp_path),
        "--no-progress",
        data_root=data_root,
        preexec_fn=limit_files_to_64_kib,
    )
    assert "File too large" in one_line(result) and "still holds epoch 1" in one_line(result)
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "checkpoint.pt", "history.json"]


def test_a_malformed_history_gives_one_line(tmp_path):
    (tmp_path / "history.json").write_text(json.dumps({"meta": {}, "config": {}, "epochs": []}))
    assert "is not a history written by helpers.train" in one_line(invoke("helpers.summary", str(tmp_path)))


# Preludes that stop the command at a chosen moment, say so on stdout, and wait there for the test's Ctrl-C.
PAUSE_AT_TORCH_IMPORT = """
import sys, time
class PauseAtTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            print("paused", flush=True)
            time.sleep(600)
sys.meta_path.insert(0, PauseAtTorch())
"""
PAUSE_AT_DATA_LOADING = """
import time
import helpers.data
def paused(*args, **kwargs):
    print("paused", flush=True)
    time.sleep(600)
helpers.data._load = paused
"""


@pytest.mark.parametrize(
    "prelude, stop, status",
    [
        (PAUSE_AT_TORCH_IMPORT, signal.SIGINT, 130),
        (PAUSE_AT_TORCH_IMPORT, signal.SIGTERM, 143),  # what schedulers, `timeout` and notebook runtimes send
        (PAUSE_AT_TORCH_IMPORT, signal.SIGHUP, 129),  # a closed terminal
        (PAUSE_AT_DATA_LOADING, signal.SIGTERM, 143),
    ],
    ids=["ctrl-c at torch import", "sigterm at torch import", "sighup at torch import", "sigterm at data loading"],
)
def test_a_stop_while_starting_gives_one_line_and_leaves_nothing(data_root, tmp_path, prelude, stop, status):
    process = start("helpers.train", *SMOKE_RUN, "--out", str(tmp_path / "run"), data_root=data_root, prelude=prelude)
    assert "paused\n" in iter(process.stdout.readline, "")  # reads up to that line
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert "nothing was saved" in one_line(result, status=status)
    assert not (tmp_path / "run").exists()


def running_trainings(out_dir) -> list[int]:
    """Processes training into `out_dir` (their command line names it)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it ended
            continue
        if b"helpers.train" in command and any(str(out_dir).encode() in part for part in command):
            found.append(int(proc.name))
    return found


def test_sigterm_to_seeds_stops_every_run_and_says_what_was_saved(data_root, tmp_path):
    process = start("helpers.seeds", "--seeds", "1-2", "--jobs", "2", "--out-dir", str(tmp_path), *SMOKE_RUN,
                    data_root=data_root)  # fmt: skip
    logs = [tmp_path / f"seed{seed}.log" for seed in (1, 2)]

    def started(log):
        return log.exists() and "training on" in log.read_text()

    deadline = time.monotonic() + 120
    while not all(started(log) for log in logs) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # until both runs have printed their device: both are under way
    assert all(started(log) for log in logs), [log.read_text() for log in logs if log.exists()]
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert "each run folder in" in one_line(result, status=143)
    assert running_trainings(tmp_path) == []  # nothing left running
    assert all("interrupted" in log.read_text() for log in logs)  # each run said what it saved


def test_bench_dry_run_writes_its_table(data_root, tmp_path):
    out = tmp_path / "bench.json"
    result = invoke("helpers.bench", "--dry-run", "--device", "cpu", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "fast / albu." in result.stdout and "model only / albu." in result.stdout and "dry run" in result.stdout
    report = json.loads(out.read_text())
    assert set(report["pipelines"]) == {"albumentations", "fast", "model only"} and report["dry_run"]
    assert all(figures["train_images_per_s"] > 0 for figures in report["pipelines"].values())


def test_seeds_train_at_once_and_print_one_table(data_root, tmp_path):
    result = run(
        "helpers.seeds",
        "--seeds",
        "1-2",
        "--jobs",
        "2",
        "--out-dir",
        str(tmp_path),
        *SMOKE_RUN,
        "--pipeline",
        "fast",
        data_root=data_root,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "| seed1 | 1 |" in result.stdout and "| seed2 | 1 |" in result.stdout and "over 2 runs: best" in result.stdout
    )
    first, second = (json.loads((tmp_path / f"seed{seed}" / "history.json").read_text()) for seed in (1, 2))
    assert (first["config"]["seed"], second["config"]["seed"]) == (1, 2)
    assert first["epochs"][0]["train_loss"] != second["epochs"][0]["train_loss"]  # two runs, not one twice
