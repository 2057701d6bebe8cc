"""How long a run takes here: a few training steps measured (`measure`), and from them the time of a run and
of the full recipe (`estimate`, notebook 4's first figure). The benchmark (python -m helpers bench) measures the
same way, longer."""

import math
import time
from itertools import cycle, islice

from helpers import UserError
from helpers.config import BATCH_SIZE, EPOCHS, TEST_IMAGES, TRAIN_IMAGES, Settled
from helpers.training import make_optimizer, prepare, train_epoch


def measure(run: Settled, data, steps: int, warmup: int, model_only=False) -> dict:
    """Training images/s over `steps` timed steps, and evaluation images/s over the test set.

    model_only: train on the fast pipeline's normalised test batches, made before timing starts.
    """
    config = run.config
    trainer, train_loader, test_loader = prepare(run, data)
    if warmup + steps > len(train_loader):
        raise UserError(f"--warmup + --steps must be at most {len(train_loader)} (one epoch) for this data")
    optimizer, scheduler = make_optimizer(trainer.model, config, total_steps=warmup + steps)
    train_loader.set_seed(config.seed)
    if model_only:
        test_loader = list(test_loader)
        batches = cycle(test_loader)
    else:
        batches = iter(train_loader)
    train_epoch(trainer, islice(batches, warmup), optimizer, scheduler, progress=False)
    started = time.perf_counter()
    train_epoch(trainer, islice(batches, steps), optimizer, scheduler, progress=False)  # ends in a sync
    train_seconds = time.perf_counter() - started
    trainer.evaluate(test_loader)  # warm-up for eval mode
    started = time.perf_counter()
    trainer.evaluate(test_loader)
    eval_seconds = time.perf_counter() - started
    train_rate = steps * config.batch_size / train_seconds
    return {
        "train_images_per_s": train_rate,
        "eval_images_per_s": len(data.test_labels) / eval_seconds,
        "epoch_seconds_estimate": len(data.train_labels) / train_rate + eval_seconds,
    }


def estimate(run: Settled, data, lr_test_steps=0) -> str:
    """How long `run` (and an LR range test of `lr_test_steps` batches before it) will take on its device,
    from a few measured steps, and the full recipe there."""
    config = run.config
    batches = math.ceil(len(data.train_labels) / config.batch_size)  # one epoch's: measure stays within it
    warmup = min(5, batches // 3)
    steps = min(10, batches - warmup)
    figures = measure(run, data, steps=steps, warmup=warmup)
    training = config.epochs * figures["epoch_seconds_estimate"]
    lr_test = lr_test_steps * config.batch_size / figures["train_images_per_s"]
    text = f"about {duration(training)} for {config.epochs} epoch(s) here"
    if lr_test_steps:
        text = (f"about {duration(training + lr_test)} for this notebook here: {duration(training)} for "
                f"{config.epochs} epoch(s), at most {duration(lr_test)} for the LR range test's {lr_test_steps} steps")  # fmt: skip
    text += f", measured over {steps} steps; "
    if config.batch_size == BATCH_SIZE:  # the rate holds for the recipe too
        recipe = EPOCHS * (TRAIN_IMAGES / figures["train_images_per_s"] + TEST_IMAGES / figures["eval_images_per_s"])
        text += f"the full recipe (100 epochs of 50,000 images) would take about {duration(recipe)} here: "
    else:
        text += "the full recipe: "
    return text + "python -m helpers train, or RUN = 'recipe'"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
