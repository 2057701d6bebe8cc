"""What every command shares: --help, one-line errors with status 2, and a stop at any moment."""

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers.commands.cli import STOP_SIGNALS, run_command
from running import PAUSE_AT_TORCH_IMPORT, ROOT, SMOKE_RUN, invoke, one_line, run, start
from runs import copy_of


@pytest.mark.parametrize(
    "module, flags",
    [
        (
            "train",
            ("--epochs", "--batch-size", "--max-lr", "--seed", "--precision", "--pipeline", "--resume", "--smoke"),
        ),
        ("bench", ("--steps", "--repeats", "--precision", "--dry-run", "--out")),
        ("summary", ("RUN",)),
        ("seeds", ("--seeds", "--out-dir")),
        ("colab-links", ("usage",)),
    ],
)
def test_every_command_explains_itself_with_help(module, flags):
    result = run(module, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage:") and not result.stderr
    assert all(flag in result.stdout for flag in flags)
    assert "[default: None]" not in result.stdout  # a default is said once, in words where there are some


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("train", ["--epochs", "0"], "--epochs must be from 1 to 10000"),
        ("train", ["--batch-size", "-64"], "--batch-size must be from 1 to 50000"),
        ("train", ["--max-lr", "nan"], "--max-lr must be positive and finite"),
        ("train", ["--seed", "-1"], "--seed must be from 0 to 2**63-1"),
        ("train", ["--subset", "5"], "--subset must be from 10 to 50000"),
        ("train", ["--precision", "fp8"], "--precision must be one of"),
        ("train", ["--device", "quantum"], "--device must be auto, cpu, cuda or cuda:N"),
        ("train", ["--epochs", "ten"], "invalid int value"),
        ("train", ["--resume", "/nonexistent/run"], "no checkpoint at"),
        ("bench", ["--repeats", "0"], "--steps, --warmup and --repeats must be at least 1"),
        ("bench", ["--batch-size", "0"], "--batch-size must be from 1 to 50000"),
        ("bench", ["--num-workers", "-1", "--dry-run"], "--num-workers must be from 0 to 256"),
        (
            "bench",
            ["--out", "/proc/nope/bench.json", "--data-root", "/nonexistent"],
            "cannot write to the folder of --out",
        ),
        ("train", ["--out", ""], "--out must be a folder's name (empty would be the current folder)"),
        ("train", ["--smoke", "--out", "  "], "--out must be a folder's name"),
        ("bench", ["--dry-run", "--device", "cpu", "--out", "/tmp"], "--out /tmp is a folder: name the file to write"),
        ("seeds", ["--seeds", "3-1"], "--seeds must name distinct seeds"),
        ("seeds", ["--seeds", "one"], "--seeds must look like 1-8"),
        ("seeds", ["--seed", "4"], "--seed, --out and --resume are set per seed"),
    ],
)
def test_bad_values_give_one_line_and_exit_status_2(module, args, message):
    assert message in one_line(invoke(module, *args))


# Preludes that stop the command at a chosen moment, say so on stdout, and wait there for the test's Ctrl-C: this one
# as it loads the data, PAUSE_AT_TORCH_IMPORT (tests/running.py) earlier.
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
    process = start("train", *SMOKE_RUN, "--out", str(tmp_path / "run"), data_root=data_root, prelude=prelude)
    assert "paused\n" in iter(process.stdout.readline, "")  # reads up to that line
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert "nothing was saved" in one_line(result, status=status)
    assert not (tmp_path / "run").exists()


@pytest.fixture
def stop_handlers_put_back():
    """run_command leaves the stop signals ignored after a stop, as the process is ending; pytest's is not."""
    saved = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["int", "term", "hup"])
def test_a_second_stop_while_stopping_is_ignored(second, capsys, stop_handlers_put_back):
    # Ctrl-C in a terminal reaches every process of `seeds` and seeds passes it on as well: each run has
    # it twice. The second must not cut short the first's saving, nor arrive later as a traceback.
    finished = []

    def command(argv):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the first stop ends this sleep
        finally:
            os.kill(os.getpid(), second)
            time.sleep(0.05)  # where a second KeyboardInterrupt would land
            finished.append("saved")

    assert run_command(command, []) == 130
    os.kill(os.getpid(), second)  # and after the command returned, on the way out of the process
    assert finished == ["saved"] and capsys.readouterr().err == "\ninterrupted: nothing was saved\n"


@pytest.mark.parametrize("ignored", [signal.SIGHUP, signal.SIGINT], ids=["nohup", "background job"])
def test_a_signal_the_process_was_started_ignoring_stays_ignored(ignored, stop_handlers_put_back):
    # nohup: a closed terminal (SIGHUP) must not stop the run; nor Ctrl-C a job started with `&`.
    signal.signal(ignored, signal.SIG_IGN)  # as the process was started

    def command(argv):
        os.kill(os.getpid(), ignored)
        time.sleep(0.05)  # where a stop would land
        return 0

    assert run_command(command, []) == 0
    assert signal.getsignal(ignored) is signal.SIG_IGN  # and stays so


def test_python_m_helpers_lists_its_commands_and_refuses_an_unknown_one():
    listed = invoke("--help")
    assert listed.returncode == 0 and all(name in listed.stdout for name in ("train", "bench", "seeds", "summary"))
    assert "unknown command 'fit': use one of train, bench" in one_line(invoke("fit"))


@pytest.mark.parametrize("module", ["helpers.analysis", "helpers.commands.seeds", "helpers.machinery"])
def test_running_a_module_of_the_package_names_the_commands_instead(module):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env)
    assert (
        one_line(result) == f"error: {module} is a module, not a command: run python -m helpers --help for the commands"
    )


@pytest.mark.parametrize("args", [["summary", "--help"], ["seeds", "--seeds", "x"]], ids=["help", "error"])
def test_output_that_cannot_be_written_ends_a_command_in_one_line(args):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}  # as a file's: buffered
    with open("/dev/full", "w") as full:  # a disk with no space left
        result = subprocess.run([sys.executable, "-m", "helpers", *args], stdout=full, stderr=subprocess.PIPE,
                                text=True, env={**env, "PYTHONPATH": str(ROOT)}, timeout=120)  # fmt: skip
    if args[-1] == "--help":  # all it does is print: once, not again as the process exits
        assert one_line(result) == (
            "error: cannot write the output (No space left on device): free some space, or send it elsewhere"
        )
    else:  # nothing printed on stdout: the flag's error alone
        assert one_line(result).startswith("error: --seeds must look like 1-8")


def test_a_run_whose_output_cannot_be_written_stops_in_one_line_and_keeps_what_it_saved(two_epochs, tmp_path):
    run = copy_of(two_epochs["fast"][2], tmp_path)  # epoch 1 of 2 saved
    saved = {path.name: path.read_bytes() for path in run.iterdir()}
    with open("/dev/full", "w", buffering=1) as full:  # line by line: the first line fails
        result = invoke("train", "--resume", str(run), "--no-progress", stdout=full)
    assert one_line(result).startswith("error: cannot write the output (No space left on device)")
    assert {path.name: path.read_bytes() for path in run.iterdir()} == saved
