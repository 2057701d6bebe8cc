"""What every command shares: one-line errors with exit status 2, Ctrl-C (or SIGTERM, SIGHUP) at any moment,
and flags made from TrainConfig.

Each command imports torch after parsing its flags, inside the function `run_command` runs, so that `--help`
answers at once and a Ctrl-C during that import is reported like any other.
"""

import argparse
import os
import signal
import sys
from dataclasses import fields, replace
from typing import get_args

from helpers import UserError
from helpers.config import TrainConfig, flag, with_preset
from helpers.machinery.files import advice


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


# Signals that stop a command as Ctrl-C does: it says in one line what was saved, and exits with
# 128 + the signal's number (130, 143, 129), as a shell reports a process that signal ended.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_stop_state = {"signal": signal.SIGINT, "stopping": False}


def last_stop_signal() -> int:
    """The signal that stopped the command last (SIGINT unless a handler of run_command saw another)."""
    return _stop_state["signal"]


def _stop(signum, frame):
    _stop_state.update(signal=signum, stopping=True)
    # From now on the command is ending: a second Ctrl-C, or the copy that `seeds` passes on to a run that
    # had it from the terminal too, must neither cut the saving short nor end the process in a traceback.
    # SIG_IGN, not a Python handler: a signal caught during a long C call would be handled only later.
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.SIG_IGN)
    raise KeyboardInterrupt


class CheckedOutput:
    """Standard output whose failed write (a full disk, a closed pipe) ends the command in one line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        return self._checked(self.stream.write, text)

    def flush(self):
        return self._checked(self.stream.flush)

    def _checked(self, call, *args):
        try:
            return call(*args)
        except OSError as error:
            try:  # what is still buffered goes nowhere, instead of into a second error as the process exits
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            except (OSError, ValueError):  # not a file (a test's buffer)
                pass
            raise UserError(
                f"cannot write the output ({error.strerror}): {advice(error, 'send it elsewhere')}"
            ) from None

    def __getattr__(self, name):
        return getattr(self.stream, name)


def run_command(main, argv=None) -> int:
    """Run `main(argv)`: a UserError ends it with one line and status 2; Ctrl-C, SIGTERM or SIGHUP with
    one line and 130, 143 or 129, after which stops are ignored until the process ends."""
    if hasattr(signal, "SIGXFSZ"):  # past a file-size limit a write then fails (EFBIG) instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _stop_state.update(signal=signal.SIGINT, stopping=False)
    # A signal the process was started ignoring stays ignored: nohup's SIGHUP, a background job's SIGINT.
    previous = {
        signum: signal.signal(signum, _stop)
        for signum in STOP_SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    sys.stdout = CheckedOutput(sys.stdout)
    try:
        try:
            status = main(argv)
        except SystemExit:  # argparse's --help, or a malformed flag: what it printed is written now too
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # what is buffered is written now, where a failure is one line, not at exit
        return status
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(f"\n{interrupt.args[0] if interrupt.args else 'interrupted: nothing was saved'}", file=sys.stderr)
        return 128 + last_stop_signal()
    finally:
        sys.stdout = sys.stdout.stream
        if not _stop_state["stopping"]:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def add_config_flags(parser: argparse.ArgumentParser, names=None):
    """One flag per TrainConfig setting (all, or those in `names`), with the setting's help and default.

    A flag left out of the command line leaves no attribute, so that only the flags given override
    (a resumed run's settings, say): collect them with `given_settings`.
    """
    for spec in fields(TrainConfig):
        if names is not None and spec.name not in names:
            continue
        help_text = spec.metadata["help"]
        if "(default:" not in help_text:  # those that say their default in words say it once
            help_text += f" [default: {spec.default}]"
        if spec.type is bool:
            parser.add_argument(
                flag(spec.name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        else:
            kinds = [kind for kind in get_args(spec.type) or [spec.type] if kind is not type(None)]
            parser.add_argument(flag(spec.name), type=kinds[0], default=argparse.SUPPRESS, help=help_text)


def given_settings(args: argparse.Namespace) -> dict:
    """The TrainConfig settings given as flags (see add_config_flags)."""
    return {spec.name: getattr(args, spec.name) for spec in fields(TrainConfig) if hasattr(args, spec.name)}


def config_from_flags(args: argparse.Namespace, preset: str) -> TrainConfig:
    """A preset's TrainConfig (helpers.config.PRESETS) with the flags given in place of its settings: flags win."""
    return replace(with_preset(TrainConfig(), preset), **given_settings(args))
