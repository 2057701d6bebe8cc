"""Training, in the order a reader follows it: a run's settings fixed for its hardware (`settle`), the model on
its device (`Trainer`, whose `step` is one training step: forward, loss, backward, update), the published SGD
and its one-cycle schedule (`make_optimizer`), one epoch (`train_epoch`), and whole runs (`fit`, and
`fit_or_load` for notebook 4) that evaluate every epoch, check for divergence and save it."""

import math
import random
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from itertools import chain
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm  # plain text, also in notebooks: no widget state in a saved notebook

from helpers import UserError
from helpers.config import NUM_CLASSES, Settled, TrainConfig
from helpers.data import load_cifar10
from helpers.machinery.checkpoint import (
    CHECKPOINT,
    HISTORY,
    Checkpoint,
    Unusable,
    load_checkpoint,
    load_history,
    restore_training,
)
from helpers.machinery.cpu_dropout import use_fast_cpu_dropout
from helpers.machinery.hardware import auto_precision, device_name, fp32_arithmetic, resolve_device
from helpers.machinery.run_folder import FINISHED, UNFINISHED, RunFolder, check_resumable, run_status
from helpers.machinery.static_step import StaticStep
from helpers.model import Net
from helpers.pipelines import make_loaders


def settle(config: TrainConfig) -> Settled:
    """The one place a run's settings are checked and fixed for the hardware: `config` validated, with its
    'auto' device, pipeline and precision resolved (fast pipeline on CUDA; bf16 where the hardware has it)."""
    config.validate()
    device = resolve_device(config.device)
    pipeline = config.pipeline
    if pipeline == "auto":  # on a GPU, per-image CPU augmentation would keep it waiting
        pipeline = "fast" if device.type == "cuda" else "albumentations"
    precision = auto_precision(device) if config.precision == "auto" else config.precision
    return Settled(replace(config, pipeline=pipeline, precision=precision), device)


def describe(run: Settled) -> str:
    """What a settled run will do, in one line."""
    config = run.config
    images = f"{config.subset:,}" if config.subset else "50,000"
    return (
        f"training on {device_name(run.device)}: {config.epochs} epoch(s) of {images} images, "
        f"{config.pipeline} pipeline, {config.precision}"
    )


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Trainer:
    """A model on `run.device`, in the run's memory format, precision and compilation, and its training step.

    The training loop, the LR range test, the benchmark and the analysis of a saved model (predictions) all run
    the model through it, so that each trains and predicts exactly as the others do. fp16 trains with a gradient
    scaler, which skips the steps whose gradients overflow. The model is moved in place (so an optimizer or state
    dict may hold it before or after), and on the CPU its Dropout layers draw their masks the fast way
    (helpers.machinery.cpu_dropout: the same distribution).
    static_step: train with machinery's `StaticStep` (fixed input buffers, SGD with tensor lr and momentum), the
    form a CUDA graph captures, instead of `step`; not with fp16's scaler.
    """

    def __init__(self, model, run: Settled, static_step=False):
        config, self.device = run
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        model.to(self.device, memory_format=self.memory_format)
        if self.device.type == "cpu":
            use_fast_cpu_dropout(model)
        self.model = model  # what is saved: the compiled wrapper's state dict would prefix every key
        self.forward_pass = torch.compile(model) if config.compile else model
        self.fp32 = fp32_arithmetic(self.device, config.precision)  # fp32 is IEEE fp32 on a GPU too (no TF32)
        dtype = AUTOCAST_DTYPES.get(config.precision)
        self.autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext()
        self.scaler = torch.amp.GradScaler(self.device.type) if config.precision == "fp16" else None
        if static_step and self.scaler is not None:
            raise ValueError("the static step has no gradient scaler: train fp16 with torch's step")
        self.static_step = static_step
        self._static = None

    def step(self, optimizer, images, labels):
        """One training step on a batch: forward pass and loss (in the run's precision), gradients, update.
        Returns (loss, output)."""
        with self.autocast:  # bf16/fp16 where the run says; the loss is computed in fp32 from the output
            output = self.forward_pass(images)
            loss = F.nll_loss(output, labels)  # the model ends in log_softmax: nll_loss is cross-entropy
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:  # fp16: scale the loss so small gradients do not underflow; skip a step whose gradients overflow
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        return loss, output

    def train_step(self, optimizer):
        """What trains one batch, (images, labels) -> (loss, output): `step`, or the StaticStep, built once per
        optimizer (after its state is restored)."""
        if not self.static_step:
            return partial(self.step, optimizer)
        if self._static is None or self._static.optimizer is not optimizer:
            self._static = StaticStep(self.forward_pass, optimizer, self.autocast)
        return self._static

    def to_device(self, images, labels):
        """A batch on the device, the images in the run's memory format."""
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return images, labels.to(self.device, non_blocking=True)

    @torch.inference_mode()
    def predict(self, loader):
        """(log-probabilities, labels) for every image in `loader`, on the CPU."""
        self.forward_pass.eval()
        outputs, targets = [], []
        for images, labels in loader:
            images, labels = self.to_device(images, labels)
            with self.autocast:
                outputs.append(self.forward_pass(images).float())
            targets.append(labels)
        return torch.cat(outputs).cpu(), torch.cat(targets).cpu()

    def evaluate(self, loader):
        """(mean loss, accuracy) on `loader`."""
        output, labels = self.predict(loader)
        return F.nll_loss(output, labels).item(), (output.argmax(1) == labels).float().mean().item()

    def training_state(self, optimizer, scheduler) -> dict:
        """What a checkpoint holds to continue training: model, optimizer, schedule (and fp16's scaler)."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state


# A loss this many times a uniform guess's (ln 10), or the first epoch's if lower, means divergence.
DIVERGED_LOSS_FACTOR = 10


class TrainingDiverged(UserError):
    """The loss or the model stopped being finite, or the loss exploded."""


def seed_everything(seed: int):
    """Python's, numpy's and torch's random numbers (the published code seeded torch's alone)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Each epoch draws from its own seed, so a resumed run repeats an uninterrupted one exactly."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def make_optimizer(model, config: TrainConfig, total_steps: int):
    """The published SGD with momentum, and its one-cycle learning rate over `total_steps` batches."""
    optimizer = torch.optim.SGD(model.parameters(), lr=config.max_lr, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.max_lr, total_steps=total_steps)
    return optimizer, scheduler


def prepare(run: Settled, data):
    """A fresh Net, seeded with the run's seed, on a Trainer, and the run's (train, test) loaders of `data`:
    what fit, the LR range test and the benchmark start from. Returns (trainer, train_loader, test_loader)."""
    seed_everything(run.config.seed)
    trainer = Trainer(Net(), run)
    return (trainer, *make_loaders(data, run))


def train_epoch(trainer: Trainer, loader, optimizer, scheduler, progress=True, description="train"):
    """One pass over `loader`, the schedule stepped after every batch: (mean loss, accuracy) on the augmented
    training images, and the number of steps whose loss was not finite (left out of the mean; with fp16
    the scaler skips them)."""
    trainer.forward_pass.train()
    loss_sum = torch.zeros((), device=trainer.device)
    counted = torch.zeros((), device=trainer.device)  # images in steps with a finite loss
    nonfinite = torch.zeros((), dtype=torch.long, device=trainer.device)
    correct = torch.zeros((), dtype=torch.long, device=trainer.device)
    seen = 0
    train_step = trainer.train_step(optimizer)
    # On stdout: a notebook shows it as plain text, not as an error (stderr is pink in JupyterLab). In a
    # terminal this bar sits under fit's epochs bar and goes when the epoch ends; elsewhere (a notebook, a
    # log) text cannot redraw two lines, so it is the one bar and stays, a line an epoch.
    bar = tqdm(loader, desc=description, leave=not sys.stdout.isatty(), disable=not progress, file=sys.stdout)
    for step, (images, labels) in enumerate(bar):
        loss, output = train_step(*trainer.to_device(images, labels))
        with warnings.catch_warnings():  # stepped per batch, also when the scaler skipped the update
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step\\(\\)` before")
            scheduler.step()
        loss = loss.detach().float()
        finite = torch.isfinite(loss)
        loss_sum += torch.where(finite, loss, 0) * len(labels)
        counted += finite * len(labels)
        nonfinite += ~finite
        correct += (output.argmax(1) == labels).sum()
        seen += len(labels)
        if step % 50 == 0:  # .item() waits for the GPU: not every step
            bar.set_postfix(loss=f"{loss.item():.3f}")
    counted = counted.item()
    mean_loss = loss_sum.item() / counted if counted else math.inf
    return mean_loss, correct.item() / seen, nonfinite.item()


def divergence(model, record: dict, first_loss: float, fp16: bool) -> str | None:
    """Why this epoch's model or losses cannot be trusted, or None."""
    tensors = [(name, t) for name, t in chain(model.named_parameters(), model.named_buffers()) if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for _, t in tensors]).cpu()  # one sync
    if not finite.all():
        return f"{tensors[int((~finite).nonzero()[0])][0]} is no longer finite"
    if record.get("nonfinite_steps", 0) and not fp16:
        return f"{record['nonfinite_steps']} steps had a non-finite loss"
    limit = DIVERGED_LOSS_FACTOR * min(math.log(NUM_CLASSES), first_loss)
    for name in ("train_loss", "test_loss"):
        if not record[name] <= limit:
            return f"the {name.replace('_', ' ')} is {record[name]:.4g}, above {limit:.3g}"
    return None


def saved_run(config: TrainConfig) -> tuple[str | None, dict | None]:
    """What notebook 4 finds in config.out: (run_status of the run saved there, its history), or (None, None) where
    there is no history of ours (fit then decides: it refuses a folder that holds anything)."""
    try:
        saved = load_history(config.out)
    except UserError:
        return None, None
    return run_status(saved["config"], len(saved["epochs"]), config), saved


def refuse_an_unusable_run(out: str):
    """A run folder that holds a run's files, but no history notebook 4 can use, refused in notebook 4's terms."""
    folder = Path(out)
    if not any((folder / name).is_file() for name in (HISTORY, CHECKPOINT)):
        return  # no run there: fit decides
    try:
        load_history(folder)
    except Unusable as error:
        raise UserError(
            f"the history of the run in RUN_FOLDER {out} cannot be used ({error.problem}): "
            "set OVERWRITE = True to replace the run, or change RUN_FOLDER"
        ) from None


def fit_or_load(run: Settled, data=None, overwrite=False) -> dict:
    """Notebook 4's training: a finished run of the same settings already in the run's folder is loaded, not
    trained again, and an unfinished one continued; a run of other settings there is replaced only with
    `overwrite`; else `fit`."""
    config = run.config
    status, saved = saved_run(config)
    if saved is None and not overwrite:
        refuse_an_unusable_run(config.out)
    if saved is not None:
        if status == FINISHED:
            print(f"loaded the finished run in {config.out}, of these settings (to train again: another RUN_FOLDER)")
            return saved
        if status == UNFINISHED:
            print(f"continuing the unfinished run in {config.out} from epoch {len(saved['epochs']) + 1}")
            return fit(run, data, resume=load_checkpoint(config.out, saved))
        if not overwrite:
            raise UserError(
                f"{config.out} holds a run of other settings: set OVERWRITE = True to replace it, or change RUN_FOLDER"
            )
    return fit(run, data, overwrite=overwrite)


def fit(
    run: Settled, data=None, resume: Checkpoint | None = None, overwrite=False, on_start=None, on_epoch_end=None
) -> dict:
    """Train as the settled `run` says (`settle`), saving checkpoint.pt and history.json in
    its out folder after every epoch.

    resume: a checkpoint (helpers.machinery.checkpoint.load_checkpoint) to continue from; its settings must match.
    on_start: called with the data once the run folder is taken, before the model is built (the train command
    prints its estimate there).
    on_epoch_end: called with each epoch's record after it is saved.
    Returns the run's history, as saved in history.json: {"meta", "config", "epochs"}.
    """
    config, device = run
    if resume is not None:
        check_resumable(resume, config)
    folder = RunFolder(config.out)
    with folder:  # entered first: a stop landing just as open() returned would skip a with-statement's __exit__
        folder.open(resume, overwrite)
        # Data and loaders.
        if data is None:
            data = load_cifar10(config.data_root, subset=config.subset, test_subset=config.test_subset)
        if on_start is not None:
            on_start(data)
        # Model, optimizer and schedule, fresh or restored.
        trainer, train_loader, test_loader = prepare(run, data)
        model = trainer.model
        optimizer, scheduler = make_optimizer(model, config, config.epochs * len(train_loader))
        if resume is not None:
            restore_training(resume, model, optimizer, scheduler, trainer.scaler)
        history = folder.begin(
            config, device_name(device), trainer.fp32, len(data.train_labels), len(data.test_labels), resume
        )

        # The epoch loop.
        first_epoch = len(history["epochs"]) + 1
        epochs = tqdm(
            range(first_epoch, config.epochs + 1),
            desc="epochs",
            initial=first_epoch - 1,
            total=config.epochs,
            disable=not (config.progress and sys.stdout.isatty()),  # see train_epoch
            file=sys.stdout,
        )
        for epoch in epochs:
            seed = epoch_seed(config.seed, epoch)
            seed_everything(seed)
            train_loader.set_seed(seed)
            started = time.perf_counter()
            train_loss, train_acc, nonfinite = train_epoch(
                trainer, train_loader, optimizer, scheduler, config.progress, f"epoch {epoch}"
            )
            test_loss, test_acc = trainer.evaluate(test_loader)
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "lr": scheduler.get_last_lr()[0],
                "seconds": time.perf_counter() - started,
            }
            if nonfinite:
                record["nonfinite_steps"] = nonfinite
            first_loss = history["epochs"][0]["train_loss"] if history["epochs"] else math.inf
            problem = divergence(model, record, first_loss, fp16=trainer.scaler is not None)
            if problem:
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch}: {problem}; lower --max-lr; {folder.what_is_saved()}"
                )
            folder.append(record, trainer.training_state(optimizer, scheduler))
            epochs.set_postfix(test_acc=f"{test_acc:.2%}")
            tqdm.write(f"epoch {epoch}/{config.epochs}: test accuracy {test_acc:.2%}, train loss {train_loss:.3f} "
                       f"({record['seconds']:.0f} s)", file=sys.stdout)  # fmt: skip
            if on_epoch_end is not None:
                on_epoch_end(record)
    return history
