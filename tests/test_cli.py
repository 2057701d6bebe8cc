"""The commands as a user runs them: one line and exit status 2 for every bad input, never a traceback.

Most cases call a command's `main` in this process (`invoke`): the code that `python -m` runs, without
the seconds of a new interpreter importing torch. Signals, resource limits, a killed owner and runs
side by side need processes of their own (`start`, `run`).
"""

import importlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import UserError
from helpers.checkpoint import load_checkpoint
from helpers.config import TrainConfig, smoke
from helpers.device import settle
from helpers.engine import fit
from helpers.run_folder import RunFolder, check_resumable
from helpers.train import build_parser, config_from_args

ROOT = Path(__file__).resolve().parents[1]
SMOKE_RUN = ["--smoke", "--device", "cpu", "--no-progress"]


def start(module, *args, data_root=None, preexec_fn=None, prelude=None):
    """Start `python -m module args`; `prelude`: Python code that runs first in that process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if data_root is not None:
        env["CIFAR10_ROOT"] = str(data_root)
    command = [sys.executable, "-m", module, *args]
    if prelude is not None:
        launch = f"import runpy, sys\nsys.argv = {[module, *args]!r}\nrunpy.run_module({module!r}, run_name='__main__')"
        command = [sys.executable, "-c", prelude + "\n" + launch]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec_fn
    )


def run(module, *args, data_root=None, preexec_fn=None):
    process = start(module, *args, data_root=data_root, preexec_fn=preexec_fn)
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:  # timed out: leave nothing running
            process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def invoke(module, *args):
    """`python -m module args`, run as its `main(args)` in this process, with its output captured."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            status = importlib.import_module(module).main(list(args))
        except SystemExit as exit:  # argparse: --help, or a malformed flag
            status = exit.code
    return subprocess.CompletedProcess([module, *args], status, stdout.getvalue(), stderr.getvalue())


def one_line(result, status=2) -> str:
    """The single line a failed command printed on stderr (warnings aside), after checking its status."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert result.returncode == status and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


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
        ("helpers.train", ["--epochs", "0"], "--epochs must be positive"),
        ("helpers.train", ["--batch-size", "-64"], "--batch-size must be positive"),
        ("helpers.train", ["--max-lr", "nan"], "--max-lr must be positive"),
        ("helpers.train", ["--seed", "-1"], "--seed must be from 0 to 2**63-1"),
        ("helpers.train", ["--subset", "5"], "--subset must be from 10 to 50000"),
        ("helpers.train", ["--precision", "fp8"], "--precision must be one of"),
        ("helpers.train", ["--device", "quantum"], "--device must be auto, cpu, cuda or cuda:N"),
        ("helpers.train", ["--epochs", "ten"], "invalid int value"),
        ("helpers.train", ["--resume", "/nonexistent/run"], "no checkpoint at"),
        ("helpers.bench", ["--repeats", "0"], "--steps, --warmup and --repeats must be at least 1"),
        ("helpers.bench", ["--batch-size", "0"], "--batch-size must be positive"),
        ("helpers.bench", ["--num-workers", "-1", "--dry-run"], "--num-workers must be 0 or more"),
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
    "prelude", [PAUSE_AT_TORCH_IMPORT, PAUSE_AT_DATA_LOADING], ids=["torch import", "data loading"]
)
def test_ctrl_c_while_starting_gives_one_line_and_leaves_nothing(data_root, tmp_path, prelude):
    process = start("helpers.train", *SMOKE_RUN, "--out", str(tmp_path / "run"), data_root=data_root, prelude=prelude)
    assert "paused\n" in iter(process.stdout.readline, "")  # reads up to that line
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert "nothing was saved" in one_line(result, status=130)
    assert not (tmp_path / "run").exists()


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
