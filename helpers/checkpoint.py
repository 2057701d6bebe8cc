"""Run folders: one owner at a time, atomic checkpoints and histories, and checks on what is loaded.

A run folder holds checkpoint.pt and history.json. The checkpoint is each epoch's single commit
point: it holds the model, optimizer, schedule and the whole history. history.json is written right
after it from the same history, and rewritten from the checkpoint when a run is resumed, so a crash
between the two writes loses nothing. A history is {"meta": provenance, "config": settings,
"epochs": one record per epoch}: what `fit` returns, what history.json holds, what `summary` reads.
"""
import fcntl
import io
import json
import math
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

from helpers import UserError
from helpers.config import TrainConfig
from helpers.device import device_name

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
LOCK = ".lock"
EPOCH_FIELDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")


def write_atomically(path, data: bytes):
    """Write via a temporary file in the same folder, then rename over `path` (atomic on POSIX).

    On any failure (a full disk, a file-size limit) the temporary file is removed and `path` is
    untouched; the OSError is raised as a UserError.
    """
    path = Path(path)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.fchmod(handle, 0o644)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise UserError(f"cannot write {path} ({error.strerror}): free some space, or raise the file-size limit") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)


def save_json(path, payload):
    write_atomically(path, json.dumps(payload, indent=1).encode() + b"\n")


def save_checkpoint(path, payload):
    buffer = io.BytesIO()  # serialised first, so that a failed write is a plain OSError
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())


def checkpoint_path(path) -> Path:
    """A checkpoint file, or the run folder that holds one."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def _not_from_train(path, what, problem) -> UserError:
    return UserError(f"{path} is not a {what} written by helpers.train ({problem}): pass a run folder that helpers.train wrote")


def check_epochs(epochs, path, what):
    """A list of epoch records 1, 2, ..., each with finite numbers for EPOCH_FIELDS."""
    if not isinstance(epochs, list):
        raise _not_from_train(path, what, "its epochs are not a list")
    for number, record in enumerate(epochs, start=1):
        if not isinstance(record, dict) or record.get("epoch") != number:
            raise _not_from_train(path, what, f"epoch record {number} is missing or out of order")
        for name in EPOCH_FIELDS:
            value = record.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _not_from_train(path, what, f"epoch {number} has {name}={value!r}")


def load_checkpoint(path) -> dict:
    """A checkpoint written by helpers.train, checked before use; unpickled with weights_only=True,
    which builds tensors and plain values only and never runs code from the file."""
    path = checkpoint_path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}: pass a run folder or checkpoint.pt written by helpers.train") from None
    except Exception as error:
        raise UserError(f"cannot read checkpoint {path} ({type(error).__name__}): it is damaged or not from helpers.train") from None
    kinds = {"model": dict, "optimizer": dict, "scheduler": dict, "epoch": int, "history": list, "config": dict}
    if not isinstance(checkpoint, dict):
        raise _not_from_train(path, "checkpoint", f"it holds a {type(checkpoint).__name__}")
    for key, kind in kinds.items():
        if not isinstance(checkpoint.get(key), kind) or isinstance(checkpoint.get(key), bool):
            raise _not_from_train(path, "checkpoint", f"{key!r} is missing or not {kind.__name__}")
    if not all(isinstance(value, torch.Tensor) for value in checkpoint["model"].values()):
        raise _not_from_train(path, "checkpoint", "its model holds values that are not tensors")
    check_epochs(checkpoint["history"], path, "checkpoint")
    if len(checkpoint["history"]) != checkpoint["epoch"]:
        raise _not_from_train(path, "checkpoint", f"epoch {checkpoint['epoch']} with {len(checkpoint['history'])} epoch records")
    try:
        TrainConfig.from_dict(checkpoint["config"])
    except (UserError, TypeError) as error:
        raise _not_from_train(path, "checkpoint", f"bad settings: {error}") from None
    return checkpoint


def load_history(path) -> dict:
    """A run's history.json (or the run folder holding it), checked before use."""
    path = Path(path)
    path = path / HISTORY if path.is_dir() else path
    try:
        history = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read history {path} ({type(error).__name__}): pass a history.json written by helpers.train") from None
    if not isinstance(history, dict) or not all(isinstance(history.get(k), dict) for k in ("meta", "config")):
        raise _not_from_train(path, "history", "it needs 'meta' and 'config' objects")
    if not isinstance(history["meta"].get("device"), str):
        raise _not_from_train(path, "history", "its meta names no device")
    check_epochs(history.get("epochs"), path, "history")
    if not history["epochs"]:
        raise _not_from_train(path, "history", "it has no epochs")
    return history


def restore_model(model, checkpoint: dict, path):
    """Load a checked checkpoint's weights into `model`, or say in one line why they do not fit."""
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        detail = (str(error).splitlines()[1:] or [str(error)])[0].strip()
        raise UserError(f"{path} holds the weights of another model ({detail}): pass a checkpoint of "
                        "helpers.model.Net") from None


def restore(checkpoint: dict, path, model, optimizer, scheduler, scaler=None):
    """Load a checked checkpoint into freshly built training objects, or say in one line why not."""
    restore_model(model, checkpoint, path)
    expected = scheduler.state_dict()
    saved = checkpoint["scheduler"]
    if set(saved) != set(expected) or saved.get("total_steps") != expected["total_steps"]:
        raise _not_from_train(path, "checkpoint", "its schedule does not match these settings")
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(saved)
        if scaler is not None and "scaler" in checkpoint:
            scaler.load_state_dict(checkpoint["scaler"])
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise _not_from_train(path, "checkpoint", f"its optimizer state does not fit ({type(error).__name__})") from None


def check_resumable(checkpoint: dict, config: TrainConfig):
    """Refuse to continue a checkpoint with other experiment settings than it was made with."""
    saved = TrainConfig.from_dict(checkpoint["config"]).experiment()
    changed = {k for k, v in config.experiment().items() if saved[k] != v}
    if changed:
        details = ", ".join(f"{k}={saved[k]!r}" for k in sorted(changed))
        raise UserError(f"the checkpoint was made with {details}: resume with those settings")


def session(device: torch.device) -> dict:
    """Provenance of this process: device, command, start time, torch version."""
    return {
        "device": device_name(device),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": str(torch.__version__),
    }


def check_writable_folder(folder: Path, what: str):
    """Create `folder` if needed and check that files can be written there, or raise a UserError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f"cannot write to {what} {folder} ({error.strerror}): choose another --out") from None


class RunFolder:
    """A run folder, owned by one process from `open` to `close`.

    Ownership is an exclusive lock on its .lock file. The operating system releases it when the
    process ends, however it ends, so a killed run never leaves a stale lock behind.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.checkpoint, self.history = self.path / CHECKPOINT, self.path / HISTORY
        self._lock = None
        self._created = False
        self.saved_epoch = None  # the epoch checkpoint.pt holds, once known

    def open(self, resume=None, overwrite=False) -> "RunFolder":
        """Take the folder, or raise UserError if another process holds it or it holds another run.

        A run is continued in place when `resume` names this folder; otherwise an existing run here
        is replaced only with `overwrite`. Temporary files left by a killed save are removed.
        """
        self._created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / LOCK, "a+")
        except OSError as error:
            raise UserError(f"cannot write to run folder {self.path} ({error.strerror}): choose another --out") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            owner = self._lock.read().strip() or "unknown"
            self._lock.close()
            self._lock = None
            raise UserError(f"{self.path} is in use by another run (process {owner}): wait for it to end, "
                            "or choose another --out") from None
        self._lock.truncate(0)
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        for leftover in [*self.path.glob(f".{CHECKPOINT}.*"), *self.path.glob(f".{HISTORY}.*")]:
            leftover.unlink()
        in_place = resume is not None and checkpoint_path(resume).resolve() == self.checkpoint.resolve()
        if self.checkpoint.exists():
            if not (in_place or overwrite):
                self.close()
                raise UserError(f"{self.path} already holds a run: continue it with --resume {self.path}, "
                                "or pass --overwrite or another --out")
            self.saved_epoch = load_checkpoint(self.checkpoint)["epoch"] if in_place else None
        return self

    def commit(self, state: dict, history: dict):
        """Save one finished epoch: the checkpoint (the commit point), then history.json from the same history."""
        try:
            save_checkpoint(self.checkpoint, {**state, "epoch": len(history["epochs"]), "history": history["epochs"],
                                              "meta": history["meta"], "config": history["config"]})
        except UserError as error:
            raise UserError(f"{error}; {self.holds()}") from None
        self.saved_epoch = len(history["epochs"])
        try:
            save_json(self.history, history)
        except UserError as error:
            raise UserError(f"{error}; {self.checkpoint} holds epoch {self.saved_epoch}, and --resume {self.path} "
                            "rewrites the history from it") from None

    def write_history(self, history: dict):
        save_json(self.history, history)

    def holds(self) -> str:
        """What the folder's checkpoint holds now, in words."""
        if self.saved_epoch is None:
            return "no epoch has finished, so nothing was saved"
        return f"{self.checkpoint} still holds epoch {self.saved_epoch}"

    def close(self):
        """Release the folder; remove it again if this run made it and saved nothing in it."""
        if self._lock is None:
            return
        if self._created and self.saved_epoch is None:
            (self.path / LOCK).unlink(missing_ok=True)
            try:
                self.path.rmdir()
            except OSError:  # something else was put there: leave it
                pass
        self._lock.close()  # closing the file releases the lock
        self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        self.close()
        if kind is KeyboardInterrupt and not error.args:
            if self.saved_epoch is None:
                raise KeyboardInterrupt("interrupted before the first epoch finished: nothing was saved; "
                                        "start again with the same command") from None
            raise KeyboardInterrupt(f"interrupted: {self.checkpoint} holds epoch {self.saved_epoch}; "
                                    f"continue with --resume {self.path}") from None
