"""Running the commands in tests: in this process (`invoke`) or in a process of their own (`start`, `run`)."""

import importlib
import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

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
