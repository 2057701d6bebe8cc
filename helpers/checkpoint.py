"""Atomic writes of checkpoints and histories, so an interruption never leaves a broken file."""
import json
import os
import tempfile
from pathlib import Path

import torch

from helpers import UserError

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"


def _write_atomically(path: Path, write):
    """Write via a temporary file in the same folder, then rename over `path` (atomic on POSIX)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.fchmod(handle, 0o644)  # mkstemp makes 0600; results are meant to be shared
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def save_json(path, payload):
    _write_atomically(path, lambda f: f.write(json.dumps(payload, indent=1).encode() + b"\n"))


def save_checkpoint(path, payload):
    _write_atomically(path, lambda f: torch.save(payload, f))


def checkpoint_path(path) -> Path:
    """A checkpoint file, or the run folder that holds one."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def load_checkpoint(path) -> dict:
    """Load a checkpoint written by `save_checkpoint` (tensors and plain values only)."""
    path = checkpoint_path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}: pass a run folder or checkpoint.pt written by helpers.train") from None
    except Exception as error:
        raise UserError(f"cannot read checkpoint {path} ({type(error).__name__}): it is damaged or not from helpers.train") from None


def load_history(path) -> dict:
    """A history.json (or the run folder holding it): {'meta': ..., 'config': ..., 'epochs': [...]}."""
    path = Path(path)
    path = path / HISTORY if path.is_dir() else path
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read history {path} ({type(error).__name__}): pass a history.json written by helpers.train") from None
