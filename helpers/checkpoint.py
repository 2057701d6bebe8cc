"""Reading a run back: checkpoint.pt and history.json, checked before use.

A history is {"meta": provenance, "config": settings, "epochs": one record per epoch}: what `fit`
returns, what history.json holds, what `summary` reads. A checkpoint holds the model, optimizer,
schedule, the epoch, and the whole history (see helpers.run_folder).
"""

import json
import math
from pathlib import Path

from helpers import UserError
from helpers.config import TrainConfig

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
EPOCH_FIELDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")


class Checkpoint(dict):
    """A checked checkpoint's contents, and the file they came from (`path`)."""

    def __init__(self, contents: dict, path: Path):
        super().__init__(contents)
        self.path = path


def checkpoint_path(path) -> Path:
    """A checkpoint file, or the run folder that holds one."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def _not_from_train(path, what, problem) -> UserError:
    return UserError(
        f"{path} is not a {what} written by helpers.train ({problem}): pass a run folder that helpers.train wrote"
    )


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


def load_checkpoint(path) -> Checkpoint:
    """A checkpoint written by helpers.train, checked before use; unpickled with weights_only=True,
    which builds tensors and plain values only and never runs code from the file."""
    import torch  # here, so that reading a history (helpers.summary) needs no torch

    path = checkpoint_path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(
            f"no checkpoint at {path}: pass a run folder or checkpoint.pt written by helpers.train"
        ) from None
    except Exception as error:
        raise UserError(
            f"cannot read checkpoint {path} ({type(error).__name__}): it is damaged or not from helpers.train"
        ) from None
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
        raise _not_from_train(
            path, "checkpoint", f"epoch {checkpoint['epoch']} with {len(checkpoint['history'])} epoch records"
        )
    try:
        TrainConfig.from_dict(checkpoint["config"])
    except (UserError, TypeError) as error:
        raise _not_from_train(path, "checkpoint", f"bad settings: {error}") from None
    return Checkpoint(checkpoint, path)


def load_history(path) -> dict:
    """A run's history.json (or the run folder holding it), checked before use."""
    path = Path(path)
    path = path / HISTORY if path.is_dir() else path
    try:
        history = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(
            f"cannot read history {path} ({type(error).__name__}): pass a history.json written by helpers.train"
        ) from None
    if not isinstance(history, dict) or not all(isinstance(history.get(k), dict) for k in ("meta", "config")):
        raise _not_from_train(path, "history", "it needs 'meta' and 'config' objects")
    if not isinstance(history["meta"].get("device"), str):
        raise _not_from_train(path, "history", "its meta names no device")
    check_epochs(history.get("epochs"), path, "history")
    if not history["epochs"]:
        raise _not_from_train(path, "history", "it has no epochs")
    return history


def restore_model(model, checkpoint: Checkpoint):
    """Load a checked checkpoint's weights into `model`, or say in one line why they do not fit."""
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        detail = (str(error).splitlines()[1:] or [str(error)])[0].strip()
        raise UserError(
            f"{checkpoint.path} holds the weights of another model ({detail}): pass a checkpoint of helpers.model.Net"
        ) from None


def restore_training(checkpoint: Checkpoint, model, optimizer, scheduler, scaler=None):
    """Load a checked checkpoint into freshly built training objects, or say in one line why not."""
    restore_model(model, checkpoint)
    expected = scheduler.state_dict()
    saved = checkpoint["scheduler"]
    if set(saved) != set(expected) or saved.get("total_steps") != expected["total_steps"]:
        raise _not_from_train(checkpoint.path, "checkpoint", "its schedule does not match these settings")
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(saved)
        if scaler is not None and "scaler" in checkpoint:
            scaler.load_state_dict(checkpoint["scaler"])
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise _not_from_train(
            checkpoint.path, "checkpoint", f"its optimizer state does not fit ({type(error).__name__})"
        ) from None
