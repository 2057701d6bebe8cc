"""The commands as a user runs them: one line and exit status 2 for every bad input, never a traceback."""
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
import torch

from helpers.config import TrainConfig
from helpers.engine import fit

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN = ["--epochs", "1", "--subset", "320", "--test-subset", "100", "--device", "cpu", "--no-progress"]


def start(module, *args, data_root=None, preexec_fn=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if data_root is not None:
        env["CIFAR10_ROOT"] = str(data_root)
    return subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=preexec_fn)


def run(module, *args, data_root=None, preexec_fn=None):
    process = start(module, *args, data_root=data_root, preexec_fn=preexec_fn)
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:  # timed out: leave nothing running
            process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def one_line(result, status=2) -> str:
    """The single line a failed command printed on stderr (warnings aside), after checking its status."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert result.returncode == status and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("module, flags", [
    ("helpers.train", ("--epochs", "--batch-size", "--max-lr", "--seed", "--precision", "--pipeline", "--resume", "--smoke")),
    ("helpers.bench", ("--steps", "--repeats", "--precision", "--dry-run", "--out")),
    ("helpers.summary", ("RUN",)),
    ("helpers.seeds", ("--seeds", "--out-dir")),
    ("helpers.colab_links", ("usage",)),
])
def test_every_command_explains_itself_with_help(module, flags):
    result = run(module, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage:") and not result.stderr
    assert all(flag in result.stdout for flag in flags)


@pytest.mark.parametrize("module, args, message", [
    ("helpers.train", ["--epochs", "0"], "--epochs must be positive"),
    ("helpers.train", ["--batch-size", "-64"], "--batch-size must be positive"),
    ("helpers.train", ["--max-lr", "nan"], "--max-lr must be positive"),
    ("helpers.train", ["--seed", "-1"], "--seed must be from 0 to 2**63-1"),
    ("helpers.train", ["--subset", "5"], "--subset must be from 10 to 50000"),
    ("helpers.train", ["--precision", "fp8"], "--precision must be one of"),
    ("helpers.train", ["--device", "quantum"], "unknown device"),
    ("helpers.train", ["--epochs", "ten"], "invalid int value"),
    ("helpers.train", ["--out", "/proc/cannot-write-here"], "cannot write to run folder"),
    ("helpers.train", ["--resume", "/nonexistent/run"], "no checkpoint at"),
    ("helpers.bench", ["--repeats", "0"], "--steps, --warmup and --repeats must be at least 1"),
    ("helpers.bench", ["--batch-size", "0"], "--batch-size must be positive"),
    ("helpers.bench", ["--num-workers", "-1", "--dry-run"], "--num-workers must be 0 or more"),
    ("helpers.bench", ["--out", "/proc/nope/bench.json", "--data-root", "/nonexistent"], "cannot write to the folder of --out"),
    ("helpers.seeds", ["--seeds", "3-1"], "--seeds must name distinct seeds"),
    ("helpers.seeds", ["--seeds", "one"], "--seeds must look like 1-8"),
    ("helpers.seeds", ["--seed", "4"], "--seed, --out and --resume are set per seed"),
])
def test_bad_values_give_one_line_and_exit_status_2(data_root, module, args, message):
    assert message in one_line(run(module, *args, data_root=data_root))


def test_corrupted_data_root_gives_one_line_and_exit_status_2(data_root, tmp_path):
    source = data_root / "cifar-10-batches-py"
    (tmp_path / "cifar-10-batches-py").mkdir()
    for path in source.iterdir():
        (tmp_path / "cifar-10-batches-py" / path.name).symlink_to(path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    result = run("helpers.train", "--subset", "100", "--data-root", str(tmp_path), "--out", str(tmp_path / "run"))
    assert one_line(result).startswith("error: CIFAR-10 files in")
    assert not (tmp_path / "run").exists()  # a failed start leaves no empty run folder


def test_a_short_run_prints_best_and_last_accuracy_and_where_results_are(data_root, tmp_path):
    out = tmp_path / "run"
    result = run("helpers.train", *TINY_RUN, "--out", str(out), data_root=data_root)
    assert result.returncode == 0, result.stderr
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.startswith("best test accuracy") and str(out) in last_line
    resumed = run("helpers.train", "--resume", str(out), "--epochs", "2", data_root=data_root)
    assert "epochs=1" in one_line(resumed)  # a different schedule is refused


def test_a_second_run_on_a_busy_folder_is_refused_and_a_killed_run_leaves_no_lock(data_root, tmp_path):
    out = tmp_path / "run"
    first = start("helpers.train", *TINY_RUN, "--epochs", "50", "--out", str(out), data_root=data_root)
    deadline = time.monotonic() + 120
    while not ((out / ".lock").exists() and (out / ".lock").read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    second = run("helpers.train", *TINY_RUN, "--out", str(out), "--overwrite", data_root=data_root)
    assert f"in use by another run (process {first.pid})" in one_line(second)
    first.kill()  # SIGKILL: no clean-up of its own runs
    first.wait()
    third = run("helpers.train", *TINY_RUN, "--out", str(out), "--overwrite", data_root=data_root)
    assert third.returncode == 0, third.stderr  # the killed run's lock went with it


def test_a_file_size_limit_while_saving_keeps_the_previous_checkpoint(data_root, tiny_cifar, tmp_path):
    config = TrainConfig(epochs=2, batch_size=32, subset=320, test_subset=200, device="cpu", progress=False, out=str(tmp_path))

    def stop_after_epoch_1(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, data=tiny_cifar, on_epoch_end=stop_after_epoch_1)
    saved = (tmp_path / "checkpoint.pt").read_bytes()

    def limit_files_to_64_kib():  # history.json fits, the checkpoint does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    result = run("helpers.train", "--resume", str(tmp_path), "--no-progress", data_root=data_root,
                 preexec_fn=limit_files_to_64_kib)
    assert "File too large" in one_line(result) and "still holds epoch 1" in one_line(result)
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "checkpoint.pt", "history.json"]


def test_a_foreign_checkpoint_and_a_malformed_history_give_one_line(tmp_path):
    torch.save({"model": torch.nn.Linear(2, 2).state_dict()}, tmp_path / "checkpoint.pt")
    assert "is not a checkpoint written by helpers.train" in one_line(run("helpers.train", "--resume", str(tmp_path)))
    (tmp_path / "history.json").write_text(json.dumps({"meta": {}, "config": {}, "epochs": []}))
    assert "is not a history written by helpers.train" in one_line(run("helpers.summary", str(tmp_path)))


def test_ctrl_c_while_torch_is_imported_gives_one_line(data_root, tmp_path):
    process = start("helpers.train", *TINY_RUN, "--out", str(tmp_path / "run"), data_root=data_root)
    maps = Path(f"/proc/{process.pid}/maps")
    while process.poll() is None and "libtorch" not in maps.read_text():
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert one_line(result, status=130).startswith("interrupted")
    assert not (tmp_path / "run").exists()


def test_ctrl_c_while_loading_data_says_nothing_was_saved(data_root, tmp_path):
    process = start("helpers.train", *TINY_RUN, "--out", str(tmp_path / "run"), data_root=data_root)
    descriptors = Path(f"/proc/{process.pid}/fd")
    while process.poll() is None and not any("cifar-10-batches-py" in target for target in open_files(descriptors)):
        time.sleep(0.005)  # until it has a CIFAR-10 file open: the MD5 check or the unpickling
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert "nothing was saved" in one_line(result, status=130)
    assert not (tmp_path / "run").exists()


def open_files(descriptors: Path) -> list[str]:
    """What a process's open file descriptors point to (those it closes meanwhile left out)."""
    targets = []
    try:
        for fd in descriptors.iterdir():
            try:
                targets.append(os.readlink(fd))
            except OSError:
                pass
    except OSError:  # the process ended
        pass
    return targets


def test_bench_dry_run_writes_its_table(data_root, tmp_path):
    out = tmp_path / "bench.json"
    result = run("helpers.bench", "--dry-run", "--device", "cpu", "--out", str(out), data_root=data_root)
    assert result.returncode == 0, result.stderr
    assert "fast / albu." in result.stdout and "model only / albu." in result.stdout and "dry run" in result.stdout
    report = json.loads(out.read_text())
    assert set(report["pipelines"]) == {"albumentations", "fast", "model only"} and report["dry_run"]
    assert all(figures["train_images_per_s"] > 0 for figures in report["pipelines"].values())


def test_seeds_train_at_once_and_print_one_table(data_root, tmp_path):
    result = run("helpers.seeds", "--seeds", "1-2", "--out-dir", str(tmp_path), *TINY_RUN, data_root=data_root)
    assert result.returncode == 0, result.stderr
    assert "| seed1 | 1 |" in result.stdout and "| seed2 | 1 |" in result.stdout and "over 2 seeds: best" in result.stdout
    first, second = (json.loads((tmp_path / f"seed{seed}" / "history.json").read_text()) for seed in (1, 2))
    assert (first["config"]["seed"], second["config"]["seed"]) == (1, 2)
    assert first["epochs"][0]["train_loss"] != second["epochs"][0]["train_loss"]  # two runs, not one twice
