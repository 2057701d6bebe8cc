"""The one-cycle schedule step by step, and Smith's learning-rate range test: what notebook 4 shows beside
the published max_lr 0.017."""

import sys

import numpy as np
import torch
from tqdm import tqdm

from helpers import UserError
from helpers.config import Settled, TrainConfig
from helpers.machinery.hardware import device_name
from helpers.training import make_optimizer, prepare


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


def lr_range_test(run: Settled, data, start_lr=1e-5, end_lr=10.0, steps=300, smoothing=0.05, progress=True) -> dict:
    """Smith's learning-rate range test: a fresh model trained one batch a step while the learning rate
    grows exponentially from start_lr to end_lr, stopped once the smoothed loss passes 4x its lowest.

    Returns {"lr", "loss" (smoothed), "suggestion", "ran_on"}: the suggestion is the learning rate where the loss
    falls fastest against log(lr), leaving out the first 10 and last 5 steps, as torch-lr-finder does.
    Hand-written rather than torch-lr-finder, whose notebook progress bar saves widget state and whose
    mixed precision needs a gradient scaler (bf16 has none): this one trains with the Trainer.
    """
    config, device = run
    trainer, train_loader, _ = prepare(run, data)
    train_loader.set_seed(config.seed)
    optimizer = torch.optim.SGD(trainer.model.parameters(), lr=start_lr, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=(end_lr / start_lr) ** (1 / (steps - 1)))
    train_step = trainer.train_step(optimizer)
    batches = (batch for _ in range(steps) for batch in train_loader)  # as many passes as the steps need
    trainer.forward_pass.train()
    lrs, losses = [], []
    bar = tqdm(total=steps, desc="LR range test", disable=not progress, file=sys.stdout)  # see training.train_epoch
    for _, (images, labels) in zip(range(steps), batches, strict=False):
        lrs.append(optimizer.param_groups[0]["lr"])
        loss = train_step(*trainer.to_device(images, labels))[0].item()
        losses.append(loss if not losses else smoothing * loss + (1 - smoothing) * losses[-1])
        bar.update()
        bar.set_postfix(lr=f"{lrs[-1]:.2g}", loss=f"{losses[-1]:.3f}", refresh=False)
        if not losses[-1] < 4 * min(losses):  # diverged (or not finite)
            bar.set_postfix_str(f"stopped at lr {lrs[-1]:.2g}: the loss passed 4x its lowest")
            break
        scheduler.step()
    bar.close()
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
