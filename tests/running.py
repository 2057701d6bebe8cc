"""Running the commands (`python -m helpers COMMAND`) in tests: in this process (`invoke`) or in a process of
their own (`start`, `run`)."""

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from helpers.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE_RUN = ["--smoke", "--device", "cpu", "--no-progress"]
# Python code that stops a command where it would import torch, says so on stdout, and waits there for a stop: a
# prelude (`start`), or the sitecustomize of the processes a command starts.
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


def start(command, *args, data_root=None, preexec_fn=None, prelude=None):
    """Start `python -m helpers command args`; `prelude`: Python code that runs first in that process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if data_root is not None:
        env["CIFAR10_ROOT"] = str(data_root)
    line = [sys.executable, "-m", "helpers", command, *args]
    if prelude is not None:
        launch = f"import runpy, sys\nsys.argv = {['helpers', command, *args]!r}\nrunpy.run_module('helpers', run_name='__main__')"
        line = [sys.executable, "-c", prelude + "\n" + launch]
    return subprocess.Popen(
        line, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec_fn
    )


def run(command, *args, data_root=None, preexec_fn=None):
    process = start(command, *args, data_root=data_root, preexec_fn=preexec_fn)
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:  # timed out: leave nothing running
            process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def invoke(command, *args, stdout=None):
    """`python -m helpers command args`, run as `helpers.__main__.main` in this process, its output captured
    (standard output into `stdout` where a file is given)."""
    captured, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout or captured), redirect_stderr(stderr):
        try:
            status = main([command, *args])
        except SystemExit as exit:  # argparse: --help, or a malformed flag
            status = exit.code
    return subprocess.CompletedProcess([command, *args], status, captured.getvalue(), stderr.getvalue())


def one_line(result, status=2) -> str:
    """The single line a failed command printed on stderr (warnings aside), after checking its status."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert result.returncode == status and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]
