"""Reading a run back: checkpoint.pt and history.json, checked before use.

A history is {"meta": provenance, "config": settings, "epochs": one record per epoch}: what `fit`
returns, what history.json holds, what `summary` reads. A checkpoint holds the model, optimizer,
schedule, the epoch, and the whole history (see helpers.machinery.run_folder). Each is parsed once per load:
the saved settings come back as a TrainConfig (`Checkpoint.config`) or, in a history, normalised.
"""

import json
import math
import stat
from dataclasses import asdict
from pathlib import Path

from helpers import UserError
from helpers.config import TrainConfig, finite_number

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
# Each epoch record's numbers and the range each must lie in.
EPOCH_RANGES = {
    "train_loss": (0, math.inf),
    "train_acc": (0, 1),
    "test_loss": (0, math.inf),
    "test_acc": (0, 1),
    "seconds": (0, math.inf),
}
# The settings every saved run records (and "precision", or "amp" before --precision existed).
SAVED_SETTINGS = ("epochs", "batch_size", "max_lr", "momentum", "seed", "pipeline")
# The optimizer's settings that OneCycleLR sets and steps (the rest must be what the run builds).
SCHEDULED = {"lr", "momentum", "initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum"}
# Far more than any run writes (a 10,000-epoch history is about 2 MB; a checkpoint about 1 MB).
MAX_HISTORY_BYTES, MAX_CHECKPOINT_BYTES = 64 * 2**20, 256 * 2**20


class Checkpoint(dict):
    """A checked checkpoint's contents, the file they came from (`path`) and its settings (`config`)."""

    def __init__(self, contents: dict, path: Path, config: TrainConfig):
        super().__init__(contents)
        self.path, self.config = path, config


def checkpoint_path(path) -> Path:
    """A checkpoint file, or the run folder that holds one."""
    return _inside(path, CHECKPOINT)


class Unusable(UserError):
    """A saved file that cannot be used; `problem` says why in a few words (what notebook 4 tells its learner)."""

    def __init__(self, message: str, problem: str):
        super().__init__(message)
        self.problem = problem


def _inside(path, name) -> Path:
    """`path`, or `path`/`name` when `path` is a folder; a path the system refuses is a UserError."""
    path = Path(path)
    try:
        return path / name if path.is_dir() else path
    except PermissionError as error:  # a folder above it that cannot be entered
        raise Unusable(f"cannot use {path} ({error.strerror}): make it readable", error.strerror) from None
    except OSError as error:  # a name too long, say
        raise UserError(f"cannot use {path} ({error.strerror}): pass a shorter path to a run folder") from None


def _regular_file(path: Path, what: str, most: int):
    """Refuse, before opening it, what is not a regular file (a FIFO would block, a device never end) or is
    larger than `most` bytes; a missing file is left to the reader, which says so."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return
    except PermissionError as error:  # in a folder that cannot be read: not damaged
        raise Unusable(f"cannot read {what} {path} ({error.strerror}): make it readable", error.strerror) from None
    except OSError as error:
        raise Unusable(
            f"cannot read {what} {path} ({error.strerror}): pass a run folder written by python -m helpers train",
            error.strerror,
        ) from None
    if not stat.S_ISREG(status.st_mode) or status.st_size > most:
        problem = "not a regular file" if not stat.S_ISREG(status.st_mode) else f"{status.st_size:,} bytes"
        raise Unusable(
            f"cannot read {what} {path} ({problem}): pass a run folder written by python -m helpers train", problem
        )


def _not_from_train(path, what, problem) -> Unusable:
    return Unusable(
        f"{path} is not a {what} written by python -m helpers train ({problem}): pass a run folder that it wrote",
        problem,
    )


def check_epochs(epochs, path, what):
    """A list of epoch records 1, 2, ..., each with its numbers finite and in EPOCH_RANGES."""
    if not isinstance(epochs, list):
        raise _not_from_train(path, what, "its epochs are not a list")
    for number, record in enumerate(epochs, start=1):
        if not isinstance(record, dict) or record.get("epoch") != number or isinstance(record["epoch"], bool):
            raise _not_from_train(path, what, f"epoch record {number} is missing or out of order")
        for name, (low, high) in EPOCH_RANGES.items():
            value = record.get(name)
            if not (finite_number(value) and low <= value <= high):
                raise _not_from_train(path, what, f"epoch {number} has {name}={value!r}")


def check_meta(meta, path, what):
    """Provenance: a dict naming the device, with a list of resumptions if any."""
    if not isinstance(meta, dict) or not isinstance(meta.get("device"), str):
        raise _not_from_train(path, what, "its meta names no device")
    resumed = meta.get("resumed", [])
    if not isinstance(resumed, list) or not all(
        isinstance(entry, dict) and type(entry.get("at_epoch")) is int and isinstance(entry.get("device"), str)
        for entry in resumed
    ):
        raise _not_from_train(path, what, "its meta's resumed entries are malformed")


def saved_config(values, path, what) -> TrainConfig:
    """The settings a run saved: every one of SAVED_SETTINGS, valid, and settled for a device."""
    if not isinstance(values, dict):
        raise _not_from_train(path, what, "its config is not an object")
    missing = [name for name in SAVED_SETTINGS if name not in values]
    if "precision" not in values and "amp" not in values:
        missing.append("precision")
    if missing:
        raise _not_from_train(path, what, f"its config lacks {', '.join(missing)}")
    try:
        config = TrainConfig.from_dict(values)
    except (UserError, TypeError) as error:
        raise _not_from_train(path, what, f"bad settings: {error}") from None
    if "auto" in (config.pipeline, config.precision):
        raise _not_from_train(path, what, "its pipeline or precision was never settled for a device")
    return config


def load_checkpoint(path, history: dict | None = None) -> Checkpoint:
    """A checkpoint written by `python -m helpers train`, checked before use; unpickled with weights_only=True,
    which builds tensors and plain values only and never runs code from the file. With `history` (load_history's),
    also checked to be that run's: the same epochs, record for record."""
    import torch  # here, so that reading a history (the summary command) needs no torch

    path = checkpoint_path(path)
    _regular_file(path, "checkpoint", MAX_CHECKPOINT_BYTES)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(
            f"no checkpoint at {path}: pass a run folder or checkpoint.pt written by python -m helpers train"
        ) from None
    except PermissionError as error:  # there, but the system refuses to read it: not damaged
        raise UserError(f"cannot read checkpoint {path} ({error.strerror}): make it readable") from None
    except Exception as error:
        raise UserError(
            f"cannot read checkpoint {path} ({type(error).__name__}): it is damaged or not from python -m helpers train"
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
    if "meta" in checkpoint:  # checkpoints written before they held the provenance have none
        check_meta(checkpoint["meta"], path, "checkpoint")
    config = saved_config(checkpoint["config"], path, "checkpoint")
    not_finite = [
        name
        for name, value in checkpoint["model"].items()
        if value.is_floating_point() and not torch.isfinite(value).all()
    ]
    if not_finite:
        raise UserError(
            f"{path} holds weights that are not finite ({not_finite[0]}): its run diverged; "
            "start again with a lower --max-lr"
        )
    if history is not None and checkpoint["history"] != history["epochs"]:
        raise UserError(
            f"{path} is not the checkpoint of the history beside it ({len(checkpoint['history'])} and "
            f"{len(history['epochs'])} epochs, or other records): pass a run folder whose two files are one run's"
        )
    return Checkpoint(checkpoint, path, config)


def load_history(path) -> dict:
    """A run's history.json (or the run folder holding it), checked before use; its config as every setting
    of a TrainConfig (a history saved before --precision says 'precision' too)."""
    path = _inside(path, HISTORY)
    _regular_file(path, "history", MAX_HISTORY_BYTES)
    try:
        history = json.loads(path.read_text())
    except FileNotFoundError:
        raise Unusable(
            f"no history at {path}: pass a run folder written by python -m helpers train", "missing"
        ) from None
    except PermissionError as error:  # there, but the system refuses to read it: not damaged
        raise Unusable(f"cannot read history {path} ({error.strerror}): make it readable", error.strerror) from None
    # ValueError: JSONDecodeError, or an integer past Python's 4,300-digit limit for reading one.
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, MemoryError) as error:
        raise Unusable(
            f"cannot read history {path} ({type(error).__name__}): pass a history.json written by python -m helpers train",
            f"damaged: {type(error).__name__}",
        ) from None
    if not isinstance(history, dict) or not all(isinstance(history.get(k), dict) for k in ("meta", "config")):
        raise _not_from_train(path, "history", "it needs 'meta' and 'config' objects")
    check_meta(history["meta"], path, "history")
    history["config"] = asdict(saved_config(history["config"], path, "history"))
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
    steps_per_epoch = expected["total_steps"] // checkpoint.config.epochs
    if saved.get("last_epoch") != checkpoint["epoch"] * steps_per_epoch:  # the schedule's steps: epoch's end
        raise _not_from_train(
            checkpoint.path,
            "checkpoint",
            f"its schedule took {saved.get('last_epoch')!r} steps, not the "
            f"{checkpoint['epoch'] * steps_per_epoch} of its {checkpoint['epoch']} epoch(s)",
        )
    # What the run's optimizer is built with (nesterov, weight decay, dampening, ...), to hold the loaded one to;
    # lr and momentum are the schedule's, checked below and by the schedule's own state.
    built = [{key: value for key, value in group.items() if key not in SCHEDULED} for group in optimizer.param_groups]
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(saved)
        if scaler is not None and "scaler" in checkpoint:
            scaler.load_state_dict(checkpoint["scaler"])
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise _not_from_train(
            checkpoint.path, "checkpoint", f"its optimizer state does not fit ({type(error).__name__})"
        ) from None
    for group, settings in zip(optimizer.param_groups, built, strict=True):
        changed = sorted(key for key, value in settings.items() if key != "params" and group.get(key) != value)
        if changed:
            found = ", ".join(f"{key}={group.get(key)!r}" for key in changed)
            raise _not_from_train(checkpoint.path, "checkpoint", f"its optimizer has {found}, not these settings'")
    for group in optimizer.param_groups:  # what load_state_dict takes without a look, checked before an epoch
        if not all(finite_number(group.get(key)) for key in ("lr", "momentum")):
            raise _not_from_train(checkpoint.path, "checkpoint", "its learning rate or momentum is not a finite number")
        for param in group["params"]:
            buffer = optimizer.state.get(param, {}).get("momentum_buffer")
            if buffer is not None and (buffer.shape != param.shape or not buffer.isfinite().all()):
                raise _not_from_train(
                    checkpoint.path,
                    "checkpoint",
                    f"a momentum buffer of shape {tuple(buffer.shape)} is not finite or "
                    f"does not fit its parameter's {tuple(param.shape)}",
                )
