"""A run folder and the run's history: one owner at a time, started or resumed, one epoch appended
and committed at a time.

The folder holds checkpoint.pt and history.json. The checkpoint is each epoch's single commit point:
it holds the model, optimizer, schedule and the whole history. history.json is written right after
it from the same history, and rewritten from the checkpoint when a run is resumed, so a crash
between the two writes loses nothing.
"""

import fcntl
import os
import re
import sys
from contextlib import nullcontext
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from helpers import UserError
from helpers.config import TrainConfig, results_settings
from helpers.machinery.checkpoint import CHECKPOINT, HISTORY, Checkpoint, load_history
from helpers.machinery.files import PARTIAL, missing_folders, remove_empty, save_checkpoint, save_json

LOCK = ".lock"
# How a run is continued where a wrapper started it, {path} standing for its folder: `make train` sets
# 'make train ARGS="--resume {path}"', so that a stopped run is continued as it was started.
RESUME_ENV = "HELPERS_RESUME"


def resume_hint(path) -> str:
    """What continues the run in `path`: --resume, or the form its wrapper gave ($HELPERS_RESUME)."""
    return os.environ.get(RESUME_ENV, "--resume {path}").replace("{path}", str(path))


# What a save killed between writing and renaming leaves: files.write_atomically's temporary files.
LEFTOVER = re.compile(rf"\.({re.escape(CHECKPOINT)}|{re.escape(HISTORY)}){re.escape(PARTIAL)}[a-z0-9_]{{8}}")


def session(device_name: str, fp32: str) -> dict:
    """Provenance of this process: device, what its fp32 arithmetic is, command, start time, torch version."""
    import torch

    return {
        "device": device_name,
        "fp32": fp32,
        "command": " ".join([program_name(), *sys.argv[1:]]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch": str(torch.__version__),
    }


def program_name() -> str:
    """This process's program as a user typed it: `python -m helpers` for the commands."""
    program = Path(sys.argv[0])
    return "python -m helpers" if program.name == "__main__.py" and program.parent.name == "helpers" else program.name


def check_resumable(checkpoint: Checkpoint, config: TrainConfig):
    """Refuse to continue a checkpoint with other settings that change results than it was made with."""
    saved = results_settings(asdict(checkpoint.config))
    changed = {k for k, v in results_settings(asdict(config)).items() if saved[k] != v}
    if changed:
        details = ", ".join(f"{k}={saved[k]!r}" for k in sorted(changed))
        raise UserError(f"the checkpoint was made with {details}: resume with those settings")


FINISHED, UNFINISHED, OTHER_SETTINGS = "finished", "unfinished", "other settings"


def run_status(saved_settings: dict, saved_epochs: int, config: TrainConfig) -> str:
    """The one answer to "is this run done?": a saved run (its settings, as a dict, and the epochs it finished)
    is `config`'s run FINISHED or UNFINISHED, or a run of OTHER_SETTINGS (those that change results)."""
    if results_settings(saved_settings) != results_settings(asdict(config)):
        return OTHER_SETTINGS
    return FINISHED if saved_epochs == config.epochs else UNFINISHED


def saved_meta(checkpoint: Checkpoint) -> dict | None:
    """The provenance in the history.json beside a checkpoint saved before checkpoints held it, if that history
    is the same run's (its epochs the checkpoint's, or one fewer after a crash between the two saves)."""
    try:
        history = load_history(checkpoint.path.parent)
    except UserError:
        return None
    same_run = checkpoint["history"][: len(history["epochs"])] == history["epochs"]
    return history["meta"] if same_run else None


class RunFolder:
    """A run folder, owned by one process from `open` to `close`, and the history of its run.

    Ownership is an exclusive lock on its .lock file. The operating system releases it when the
    process ends, however it ends, so a killed run never leaves a stale lock behind.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.checkpoint, self.history_file = self.path / CHECKPOINT, self.path / HISTORY
        self.history = None  # {"meta", "config", "epochs"}, from `begin`
        self._lock = None
        self._created = []  # the folders open() made, deepest first
        self._made_lock = False  # whether open() made the .lock file
        self.saved_epoch = None  # the epoch checkpoint.pt holds, once known

    def open(self, resume: Checkpoint | None = None, overwrite=False) -> "RunFolder":
        """Take the folder, or raise UserError if another process holds it or it holds anything else.

        A run is continued in place when `resume` was loaded from this folder. Otherwise the folder
        must be new or empty: a folder holding a run, or any other file, is used only with
        `overwrite`, and then only the run's own files are replaced, each when the first epoch
        commits. Temporary files left by a killed save are removed, once the folder is taken. A refused
        run, or one stopped (Ctrl-C, SIGTERM) while it takes the folder, changes nothing in it.
        """
        try:
            self._take(resume, overwrite)
        except BaseException:
            self.close()
            raise
        return self

    def _take(self, resume: Checkpoint | None, overwrite: bool):
        self._refuse_a_lock_not_ours()
        try:
            self._created = missing_folders(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
            self._made_lock = not (self.path / LOCK).exists()
            self._lock = open(self.path / LOCK, "a+")
        except OSError as error:
            raise UserError(
                f"cannot write to run folder {self.path} ({error.strerror}): choose another --out"
            ) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._made_lock, self._created = False, []  # the folder and its .lock are the other run's
            self._lock.seek(0)
            owner = self._lock.read().strip() or "unknown"
            raise UserError(
                f"{self.path} is in use by another run (process {owner}): wait for it to end, or choose another --out"
            ) from None
        self._lock.truncate(0)
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        leftovers = [path for path in self.path.iterdir() if LEFTOVER.fullmatch(path.name)]
        in_place = resume is not None and resume.path.resolve() == self.checkpoint.resolve()
        held = sorted(path.name for path in self.path.iterdir() if path.name != LOCK and path not in leftovers)
        if held and not (in_place or overwrite):
            if self.checkpoint.exists():
                raise UserError(
                    f"{self.path} already holds a run: continue it with {resume_hint(self.path)}, "
                    "or pass --overwrite or another --out"
                )
            raise UserError(
                f"{self.path} is not empty (it holds {', '.join(held[:3])}{', ...' if len(held) > 3 else ''}): "
                "choose another --out, or pass --overwrite to write checkpoint.pt and history.json there"
            )
        for leftover in leftovers:  # only once the folder is ours to write in
            leftover.unlink()
        self.saved_epoch = resume["epoch"] if in_place else None

    def _refuse_a_lock_not_ours(self):
        """A .lock that is not a regular file, or holds anything but a process id (what `_take` writes), is someone
        else's: never ours to write."""
        lock = self.path / LOCK
        try:
            if not (lock.exists() or lock.is_symlink()):
                return
        except OSError:  # a path the system refuses (a name too long): _take says so in one line
            return
        try:
            with open(lock, "rb") if lock.is_file() and not lock.is_symlink() else nullcontext(None) as file:
                held = None if file is None else file.read(64)
        except OSError as error:
            raise UserError(f"cannot read {lock} ({error.strerror}): choose another --out") from None
        if held is None or (held.strip() and not held.strip().isdigit()):
            raise UserError(
                f"{self.path} holds a {LOCK} that is not a run's lock (a file of yours?): choose another --out"
            )

    def begin(
        self,
        config: TrainConfig,
        device_name: str,
        fp32: str,
        train_images: int,
        test_images: int,
        resume: Checkpoint | None = None,
    ) -> dict:
        """Start the run's history, or continue `resume`'s: continued in place, history.json is rewritten from
        the checkpoint at once, which also repairs one left an epoch short by a crash between the two writes;
        continued into another folder, nothing is written there before an epoch commits."""
        this_session = session(device_name, fp32)
        meta = {**this_session, "train_images": train_images, "test_images": test_images}
        self.history = {"meta": meta, "config": asdict(config), "epochs": []}
        if resume is not None:
            self.history["epochs"] = resume["history"]
            self.history["meta"] = resume.get("meta") or saved_meta(resume) or meta
            resumed = {"at_epoch": resume["epoch"] + 1, **this_session}
            self.history["meta"]["resumed"] = [*self.history["meta"].get("resumed", []), resumed]
            if self.saved_epoch is not None:  # in place
                save_json(self.history_file, self.history)
        return self.history

    def append(self, record: dict, training_state: dict):
        """Add one finished epoch and save it: the checkpoint (the commit point), then history.json."""
        epochs = self.history["epochs"]
        epochs.append(record)
        self.history["meta"]["seconds_total"] = sum(r["seconds"] for r in epochs)
        try:
            save_checkpoint(
                self.checkpoint,
                {
                    **training_state,
                    "epoch": len(epochs),
                    "history": epochs,
                    "meta": self.history["meta"],
                    "config": self.history["config"],
                },
            )
        except UserError as error:
            raise UserError(f"{error}; {self.what_is_saved()}") from None
        self.saved_epoch = len(epochs)
        try:
            save_json(self.history_file, self.history)
        except UserError as error:
            raise UserError(
                f"{error}; {self.checkpoint} holds epoch {self.saved_epoch}, and {resume_hint(self.path)} "
                "rewrites the history from it"
            ) from None

    def what_is_saved(self) -> str:
        """What the folder's checkpoint holds now, in words."""
        if self.saved_epoch is None:
            return "no epoch has finished, so nothing was saved"
        return f"{self.checkpoint} still holds epoch {self.saved_epoch}"

    def close(self):
        """Release the folder. A run that saved nothing in it leaves it as it found it: the .lock it made
        and the folders it made (all of them: --out a/b/c) are removed again."""
        if self.saved_epoch is None:
            if self._made_lock:
                (self.path / LOCK).unlink(missing_ok=True)
            remove_empty(self._created)
        self._made_lock, self._created = False, []
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        self.close()
        if kind is KeyboardInterrupt and not error.args:
            if self.saved_epoch is None:
                raise KeyboardInterrupt(
                    "interrupted before the first epoch finished: nothing was saved; start again with the same command"
                ) from None
            raise KeyboardInterrupt(
                f"interrupted: {self.checkpoint} holds epoch {self.saved_epoch}; continue with {resume_hint(self.path)}"
            ) from None
