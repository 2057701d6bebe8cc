"""Training and evaluation loops, seeding, checkpoints and the per-epoch history."""
import math
import os
import platform
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from helpers import UserError
from helpers.augment import AugmentedDataset, test_transform, train_transform
from helpers.checkpoint import (
    CHECKPOINT, HISTORY, checkpoint_path, load_checkpoint, load_history, save_checkpoint, save_json,
)
from helpers.config import TrainConfig
from helpers.data import load_cifar10
from helpers.fast_pipeline import DeviceLoader
from helpers.model import Net


class TrainingDiverged(UserError):
    """The loss stopped being a finite number."""


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Each epoch draws from its own seed, so a resumed run repeats an uninterrupted one exactly."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but torch sees no CUDA GPU: use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r} is not supported: use auto, cpu, cuda or cuda:N")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


class AlbumentationsLoader:
    """The published pipeline: a DataLoader over per-image albumentations transforms."""

    def __init__(self, images, labels, transform, batch_size, shuffle, num_workers, pin_memory):
        self.dataset = AugmentedDataset(images, labels, transform)
        self.generator = torch.Generator()
        self.loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=self.generator,
            num_workers=num_workers,
            pin_memory=pin_memory,
            worker_init_fn=self._seed_worker,
        )

    def _seed_worker(self, worker_id):
        # Each worker gets a copy of the transform; without this they would all draw the same numbers.
        self.dataset.transform.set_random_seed(torch.initial_seed() % 2**32)

    def set_seed(self, seed: int):
        self.generator.manual_seed(seed)
        self.dataset.transform.set_random_seed(seed)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


def make_loaders(data, config: TrainConfig, device: torch.device):
    """(train, test) loaders for the configured pipeline; the test images are only normalised."""
    if config.pipeline == "fast":
        common = dict(mean=data.mean, std=data.std, batch_size=config.batch_size, device=device,
                      channels_last=config.channels_last)
        return (
            DeviceLoader(data.train_images, data.train_labels, train=True, **common),
            DeviceLoader(data.test_images, data.test_labels, train=False, **common),
        )
    workers = config.num_workers
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
    common = dict(batch_size=config.batch_size, num_workers=workers, pin_memory=device.type == "cuda")
    train = AlbumentationsLoader(data.train_images, data.train_labels,
                                 train_transform(data.mean, data.std), shuffle=True, **common)
    test = AlbumentationsLoader(data.test_images, data.test_labels,
                                test_transform(data.mean, data.std), shuffle=False, **common)
    return train, test


class Trainer:
    """Runs a model on `device` in the configured memory format, precision and compilation.

    The model is moved in place, so an optimizer or state dict may hold it before or after.
    """

    def __init__(self, model, device, config: TrainConfig):
        self.device = device
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        model.to(device, memory_format=self.memory_format)
        self.model = torch.compile(model) if config.compile else model
        self.autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16) if config.amp else nullcontext()
        )

    def _batch(self, images, labels):
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return images, labels.to(self.device, non_blocking=True)

    def train_epoch(self, loader, optimizer, scheduler, progress=True, description="train"):
        """One pass over `loader`; returns (mean loss, accuracy) on the augmented training images."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen = 0
        bar = tqdm(loader, desc=description, leave=False, disable=not progress)
        for step, (images, labels) in enumerate(bar):
            images, labels = self._batch(images, labels)
            with self.autocast:
                output = self.model(images)
                loss = F.nll_loss(output, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(labels)
            correct += (output.argmax(1) == labels).sum()
            seen += len(labels)
            if step % 50 == 0:  # .item() waits for the GPU: not every step
                bar.set_postfix(loss=f"{loss.item():.3f}")
        return loss_sum.item() / seen, correct.item() / seen

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


def prepare_out(out: Path, resuming: bool, overwrite: bool):
    """Make the run folder, refuse to clobber another run's results, and check that it is writable."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write to run folder {out} ({error.strerror}): choose another --out") from None
    if not resuming and not overwrite and (out / CHECKPOINT).exists():
        raise UserError(f"{out} already holds a run: continue it with --resume {out}, or pass --overwrite or another --out")


def fit(config: TrainConfig, data=None, resume=None, overwrite=False, on_epoch_end=None) -> list[dict]:
    """Train with `config`, saving history.json and checkpoint.pt in config.out after every epoch.

    resume: a checkpoint (or its run folder) to continue from; its experiment settings must match.
    on_epoch_end: called with each epoch's record after it is saved.
    Returns the history: one dict per epoch.
    """
    config.validate()
    device = resolve_device(config.device)
    checkpoint = load_checkpoint(resume) if resume is not None else None
    if checkpoint is not None:
        saved = TrainConfig.from_dict(checkpoint["config"]).experiment()
        changed = {k for k, v in config.experiment().items() if saved[k] != v}
        if changed:
            details = ", ".join(f"{k}={saved[k]!r}" for k in sorted(changed))
            raise UserError(f"the checkpoint was made with {details}: resume with those settings")
    out = Path(config.out)
    prepare_out(out, resuming=checkpoint is not None, overwrite=overwrite)
    if data is None:
        data = load_cifar10(config.data_root, subset=config.subset, test_subset=config.test_subset)

    seed_everything(config.seed)
    model = Net()
    trainer = Trainer(model, device, config)
    train_loader, test_loader = make_loaders(data, config, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.max_lr, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.max_lr, epochs=config.epochs, steps_per_epoch=len(train_loader)
    )
    history, first_epoch = [], 1
    session = {
        "device": device_name(device),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
    }
    meta = {**session, "train_images": len(data.train_labels), "test_images": len(data.test_labels)}
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        history, first_epoch = checkpoint["history"], checkpoint["epoch"] + 1
        # Keep the first session's provenance and add this one's.
        saved_history = checkpoint_path(resume).parent / HISTORY
        if saved_history.exists():
            meta = load_history(saved_history)["meta"]
        meta["resumed"] = [*meta.get("resumed", []), {"at_epoch": first_epoch, **session}]

    epochs = tqdm(range(first_epoch, config.epochs + 1), desc="epochs", initial=first_epoch - 1,
                  total=config.epochs, disable=not config.progress)
    for epoch in epochs:
        seed = epoch_seed(config.seed, epoch)
        seed_everything(seed)
        train_loader.set_seed(seed)
        started = time.perf_counter()
        train_loss, train_acc = trainer.train_epoch(train_loader, optimizer, scheduler, config.progress, f"epoch {epoch}")
        test_loss, test_acc = trainer.evaluate(test_loader)
        if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
            raise TrainingDiverged(
                f"loss became {train_loss} in epoch {epoch}: lower --max-lr; {out / CHECKPOINT} still holds epoch {epoch - 1}"
            )
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - started,
        }
        history.append(record)
        meta["seconds_total"] = sum(r["seconds"] for r in history)
        save_checkpoint(out / CHECKPOINT, {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "history": history,
            "config": asdict(config),
        })
        save_json(out / HISTORY, {"meta": meta, "config": asdict(config), "epochs": history})
        epochs.set_postfix(test_acc=f"{test_acc:.2%}")
        if on_epoch_end is not None:
            on_epoch_end(record)
    return history
