"""What every command shares: one-line errors with exit status 2, and Ctrl-C at any moment.

Commands import torch and the heavy modules inside `main`, not at the top, so that `--help` answers
at once and a Ctrl-C during those imports is reported like any other.
"""
import argparse
import signal
import sys

from helpers import UserError


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def run_command(main, argv=None) -> int:
    """Run `main(argv)`: a UserError ends it with one line and status 2, Ctrl-C with one line and 130."""
    if hasattr(signal, "SIGXFSZ"):  # past a file-size limit a write then fails (EFBIG) instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(f"\n{interrupt.args[0] if interrupt.args else 'interrupted: nothing was saved'}", file=sys.stderr)
        return 130
