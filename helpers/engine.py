"""The training loop: seeding, the optimizer and its schedule, the Trainer, and `fit`."""

import math
import random
import sys
import time
import warnings
from contextlib import nullcontext
from functools import partial
from itertools import chain

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm  # plain text, also in notebooks: no widget state in a saved notebook

from helpers import UserError
from helpers.checkpoint import Checkpoint, restore_training
from helpers.config import TrainConfig
from helpers.data import load_cifar10
from helpers.device import device_name
from helpers.loaders import make_loaders
from helpers.model import Net
from helpers.recipe import NUM_CLASSES
from helpers.run_folder import RunFolder, check_resumable
from helpers.static_step import StaticStep

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# A loss this many times a uniform guess's (ln 10), or the first epoch's if lower, means divergence.
EXPLOSION = 10


class TrainingDiverged(UserError):
    """The loss or the model stopped being finite, or the loss exploded."""


def seed_everything(seed: int):
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


def one_cycle(config: TrainConfig, steps_per_epoch: int) -> dict:
    """The learning rate and momentum at every step of `config`'s schedule, read from torch's OneCycleLR
    itself as it is stepped: {"lr", "momentum": arrays, "steps_per_epoch"}."""
    optimizer, scheduler = make_optimizer(torch.nn.Linear(1, 1), config, config.epochs * steps_per_epoch)
    group, lrs, momenta = optimizer.param_groups[0], [], []
    for _ in range(config.epochs * steps_per_epoch):
        lrs.append(group["lr"])
        momenta.append(group["momentum"])
        optimizer.step()  # no gradients: changes nothing, but the schedule expects it
        scheduler.step()
    return {"lr": np.array(lrs), "momentum": np.array(momenta), "steps_per_epoch": steps_per_epoch}


def lr_range_test(config: TrainConfig, device, data, start_lr=1e-5, end_lr=10.0, steps=300, smoothing=0.05) -> dict:
    """Smith's learning-rate range test: a fresh model trained one batch a step while the learning rate
    grows exponentially from start_lr to end_lr, stopped once the smoothed loss passes 4x its lowest.

    Returns {"lr", "loss" (smoothed), "suggestion", "ran_on"}: the suggestion is the learning rate where the loss
    falls fastest against log(lr), leaving out the first 10 and last 5 steps, as torch-lr-finder does.
    Hand-written rather than torch-lr-finder, whose notebook progress bar saves widget state and whose
    mixed precision needs a gradient scaler (bf16 has none): this one trains with the Trainer.
    """
    seed_everything(config.seed)
    model = Net()
    trainer = Trainer(model, device, config)
    train_loader, _ = make_loaders(data, config, device)
    train_loader.set_seed(config.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=start_lr, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=(end_lr / start_lr) ** (1 / (steps - 1)))
    train_step = trainer._train_step(optimizer)
    batches = (batch for _ in range(steps) for batch in train_loader)  # as many passes as the steps need
    trainer.model.train()
    lrs, losses = [], []
    for _, (images, labels) in zip(range(steps), batches, strict=False):
        lrs.append(optimizer.param_groups[0]["lr"])
        loss = train_step(*trainer._batch(images, labels))[0].item()
        losses.append(loss if not losses else smoothing * loss + (1 - smoothing) * losses[-1])
        if not losses[-1] < 4 * min(losses):  # diverged (or not finite)
            break
        scheduler.step()
    if len(losses) < 17:
        raise UserError(f"the loss diverged within {len(losses)} steps of {start_lr:g}: start the test lower")
    descent = np.gradient(np.array(losses[10:-5]), np.log(lrs[10:-5]))
    ran_on = (f"{device_name(device)}, {config.precision}, batches of {config.batch_size} "
              f"from {len(data.train_labels):,} images, {config.pipeline} pipeline")  # fmt: skip
    return {
        "lr": np.array(lrs),
        "loss": np.array(losses),
        "suggestion": lrs[10 + int(np.argmin(descent))],
        "ran_on": ran_on,
    }


class Trainer:
    """Runs a model on `device` in the configured memory format, precision and compilation.

    config.precision must be settled ('bf16', 'fp16' or 'fp32'; see device.settle). fp16 trains
    with a gradient scaler, which skips the steps whose gradients overflow. The model is moved in
    place, so an optimizer or state dict may hold it before or after.
    static_step: train with `StaticStep` (fixed input buffers, SGD with tensor lr and momentum), the
    form a CUDA graph captures, instead of torch's `optimizer.step()`; not with fp16's scaler.
    """

    def __init__(self, model, device, config: TrainConfig, static_step=False):
        if config.precision not in ("fp32", *AUTOCAST_DTYPES):
            raise ValueError(f"precision {config.precision!r} is not settled: pass the config through device.settle")
        self.device = device
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        model.to(device, memory_format=self.memory_format)
        self.net = model  # what is saved: the compiled wrapper's state dict would prefix every key
        self.model = torch.compile(model) if config.compile else model
        dtype = AUTOCAST_DTYPES.get(config.precision)
        self.autocast = torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
        self.scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
        if static_step and self.scaler is not None:
            raise ValueError("the static step has no gradient scaler: train fp16 with torch's step")
        self.static_step = static_step
        self._static = None

    def _batch(self, images, labels):
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return images, labels.to(self.device, non_blocking=True)

    def train_epoch(self, loader, optimizer, scheduler, progress=True, description="train"):
        """One pass over `loader`: (mean loss, accuracy) on the augmented training images, and the
        number of steps whose loss was not finite (left out of the mean; with fp16 the scaler skips them)."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        counted = torch.zeros((), device=self.device)  # images in steps with a finite loss
        nonfinite = torch.zeros((), dtype=torch.long, device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen = 0
        train_step = self._train_step(optimizer)
        # In a terminal this bar sits under fit's epochs bar and goes when the epoch ends; elsewhere (a
        # notebook, a log) text cannot redraw two lines, so it is the one bar and stays, a line an epoch.
        bar = tqdm(loader, desc=description, leave=not sys.stderr.isatty(), disable=not progress)
        for step, (images, labels) in enumerate(bar):
            loss, output = train_step(*self._batch(images, labels))
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

    def _train_step(self, optimizer):
        """What trains one batch, (images, labels) -> (loss, output): torch's step, or the StaticStep,
        built once per optimizer (after its state is restored)."""
        if not self.static_step:
            return partial(self._torch_step, optimizer)
        if self._static is None or self._static.optimizer is not optimizer:
            self._static = StaticStep(self.model, optimizer, self.autocast)
        return self._static

    def _torch_step(self, optimizer, images, labels):
        with self.autocast:
            output = self.model(images)
            loss = F.nll_loss(output, labels)
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        return loss, output

    @torch.inference_mode()
    def predict(self, loader):
        """(log-probabilities, labels) for every image in `loader`, on the CPU."""
        self.model.eval()
        outputs, targets = [], []
        for images, labels in loader:
            images, labels = self._batch(images, labels)
            with self.autocast:
                outputs.append(self.model(images).float())
            targets.append(labels)
        return torch.cat(outputs).cpu(), torch.cat(targets).cpu()

    def evaluate(self, loader):
        """(mean loss, accuracy) on `loader`."""
        output, labels = self.predict(loader)
        return F.nll_loss(output, labels).item(), (output.argmax(1) == labels).float().mean().item()

    def training_state(self, optimizer, scheduler) -> dict:
        state = {
            "model": self.net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state


def divergence(model, record: dict, first_loss: float, fp16: bool) -> str | None:
    """Why this epoch's model or losses cannot be trusted, or None."""
    tensors = [(name, t) for name, t in chain(model.named_parameters(), model.named_buffers()) if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for _, t in tensors]).cpu()  # one sync
    if not finite.all():
        return f"{tensors[int((~finite).nonzero()[0])][0]} is no longer finite"
    if record.get("nonfinite_steps", 0) and not fp16:
        return f"{record['nonfinite_steps']} steps had a non-finite loss"
    limit = EXPLOSION * min(math.log(NUM_CLASSES), first_loss)
    for name in ("train_loss", "test_loss"):
        if not record[name] <= limit:
            return f"the {name.replace('_', ' ')} is {record[name]:.4g}, above {limit:.3g}"
    return None


def fit(
    config: TrainConfig,
    device: torch.device,
    data=None,
    resume: Checkpoint | None = None,
    overwrite=False,
    on_epoch_end=None,
) -> dict:
    """Train with `config` on `device` (both from device.settle), saving checkpoint.pt and history.json
    in config.out after every epoch.

    resume: a checkpoint (checkpoint.load_checkpoint) to continue from; its experiment settings must match.
    on_epoch_end: called with each epoch's record after it is saved.
    Returns the run's history, as saved in history.json: {"meta", "config", "epochs"}.
    """
    if "auto" in (config.pipeline, config.precision):
        raise ValueError("the config is not settled: pass it through device.settle")
    if resume is not None:
        check_resumable(resume, config)
    with RunFolder(config.out).open(resume, overwrite) as run:
        # Data and loaders.
        if data is None:
            data = load_cifar10(config.data_root, subset=config.subset, test_subset=config.test_subset)
        train_loader, test_loader = make_loaders(data, config, device)
        # Model, optimizer and schedule, fresh or restored.
        seed_everything(config.seed)
        model = Net()
        trainer = Trainer(model, device, config)
        optimizer, scheduler = make_optimizer(model, config, config.epochs * len(train_loader))
        if resume is not None:
            restore_training(resume, model, optimizer, scheduler, trainer.scaler)
        history = run.begin(config, device_name(device), len(data.train_labels), len(data.test_labels), resume)

        # The epoch loop.
        first_epoch = len(history["epochs"]) + 1
        epochs = tqdm(
            range(first_epoch, config.epochs + 1),
            desc="epochs",
            initial=first_epoch - 1,
            total=config.epochs,
            disable=not (config.progress and sys.stderr.isatty()),  # see Trainer.train_epoch
        )
        for epoch in epochs:
            seed = epoch_seed(config.seed, epoch)
            seed_everything(seed)
            train_loader.set_seed(seed)
            started = time.perf_counter()
            train_loss, train_acc, nonfinite = trainer.train_epoch(
                train_loader, optimizer, scheduler, config.progress, f"epoch {epoch}"
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
                raise TrainingDiverged(f"training diverged in epoch {epoch}: {problem}; lower --max-lr; {run.holds()}")
            run.append(record, trainer.training_state(optimizer, scheduler))
            epochs.set_postfix(test_acc=f"{test_acc:.2%}")
            if on_epoch_end is not None:
                on_epoch_end(record)
    return history
