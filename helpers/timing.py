"""How long training takes here, measured: `measure`, the steady rate of a few steps after a warm-up (the benchmark,
python -m helpers bench), and `estimate`, notebook 4's first figure, from `timed_passes`: fresh passes over the
data, as each epoch starts one, with what notebook 4 will really do with its run folder; `plan`, notebook 4's first
step, sizes its preview to the measured speed."""

import statistics
import time
from dataclasses import replace
from itertools import cycle, islice

from helpers import UserError
from helpers.config import BATCH_SIZE, EPOCHS, TEST_IMAGES, TRAIN_IMAGES, Settled, preset_for, sized_for
from helpers.data import CIFAR10Data, load_cifar10
from helpers.machinery.run_folder import FINISHED, OTHER_SETTINGS, UNFINISHED, run_status
from helpers.training import describe, make_optimizer, prepare, saved_run, train_epoch

# Notebook 4's preview on a CPU takes "a few minutes" on a slow machine too: sized down to this, never below the
# smallest sizes that still show the curves start (a class-balanced 1,000 images) and the LR range test's shape.
PREVIEW_SECONDS = 240.0
SMALLEST_PREVIEW, SMALLEST_LR_TEST = 1000, 100


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
    eval_rate = evaluation_rate(trainer, test_loader, len(data.test_labels))
    train_rate = steps * config.batch_size / train_seconds
    return {
        "train_images_per_s": train_rate,
        "eval_images_per_s": eval_rate,
        "epoch_seconds_estimate": len(data.train_labels) / train_rate + len(data.test_labels) / eval_rate,
    }


def evaluation_rate(trainer, test_loader, images: int) -> float:
    """Evaluation images/s over `test_loader` (of `images` images), timed after one untimed pass in eval mode."""
    trainer.evaluate(test_loader)
    started = time.perf_counter()
    trainer.evaluate(test_loader)
    return images / (time.perf_counter() - started)


def timed_passes(run: Settled, data, passes: int = 3) -> dict:
    """Training images/s as a run trains: the median of `passes` timings of the first steps of a fresh pass over the
    training data (at least 16, and one whole chunk of the fast pipeline, whose augmentation is timed with it),
    after a few untimed warm-up steps; evaluation images/s over the test set; and the steps timed."""
    config = run.config
    trainer, train_loader, test_loader = prepare(run, data)
    chunk_steps = getattr(train_loader, "chunk", 0) // config.batch_size  # the fast pipeline augments a chunk at once
    steps = min(len(train_loader), max(16, chunk_steps))
    warmup = min(3, steps)
    optimizer, scheduler = make_optimizer(trainer.model, config, total_steps=warmup + passes * steps)
    # Said first: the timing takes seconds on a GPU, a minute or more on a slow CPU.
    print(f"timing {passes} x {steps} training steps and the evaluation here first...", flush=True)
    train_loader.set_seed(config.seed)
    train_epoch(trainer, islice(train_loader, warmup), optimizer, scheduler, progress=False)
    rates = []
    for _ in range(passes):
        started = time.perf_counter()
        train_epoch(trainer, islice(train_loader, steps), optimizer, scheduler, progress=False)  # ends in a sync
        rates.append(steps * config.batch_size / (time.perf_counter() - started))
    return {
        "train_images_per_s": statistics.median(rates),
        "eval_images_per_s": evaluation_rate(trainer, test_loader, len(data.test_labels)),
        "steps": steps,
    }


def plan(run: Settled, choice: str, lr_test_steps: int) -> tuple[Settled, CIFAR10Data, int]:
    """Notebook 4's first step: `run` sized by RUN (`choice`: config.sized_for), its data, and how long it all takes
    here, printed after a few steps timed first. A preview that would take more than PREVIEW_SECONDS here trains on
    fewer images and runs a shorter LR range test (said); one already trained in its run folder keeps that folder's
    size, so that it is loaded or continued, not refused as a run of other settings.
    Returns (the run, its data, the LR range test's steps)."""
    preview = preset_for(run, choice) == "preview"
    run = sized_for(run, choice)
    config = run.config
    _, saved = saved_run(config)
    if preview and saved is not None:  # a preview in the run folder, of any size, is these settings' run
        earlier = replace(config, subset=saved["config"]["subset"], test_subset=saved["config"]["test_subset"])
        if run_status(saved["config"], len(saved["epochs"]), earlier) != OTHER_SETTINGS:
            run, config, preview = Settled(earlier, run.device), earlier, False
    data = load_cifar10(config.data_root, subset=config.subset, test_subset=config.test_subset)
    figures = timed_passes(run, data)
    full = (
        config.epochs * epoch_seconds(data, figures) + lr_test_steps * config.batch_size / figures["train_images_per_s"]
    )
    if preview and full > PREVIEW_SECONDS:
        share = PREVIEW_SECONDS / full
        subset, test_subset = (
            max(SMALLEST_PREVIEW, int(n * share) // 100 * 100) for n in (config.subset, config.test_subset)
        )
        lr_test_steps = max(SMALLEST_LR_TEST, int(lr_test_steps * share))
        print(f"this machine would take {duration(full)} for the preview: sized to about {duration(PREVIEW_SECONDS)}, it "
              f"trains on {subset:,} images and tests on {test_subset:,}, with {lr_test_steps} LR range test steps")  # fmt: skip
        run = Settled(replace(config, subset=subset, test_subset=test_subset), run.device)
        data = load_cifar10(config.data_root, subset=subset, test_subset=test_subset)
    print(describe(run))
    print(estimate(run, data, lr_test_steps, figures))
    return run, data, lr_test_steps


def estimate(run: Settled, data, lr_test_steps=0, figures=None) -> str:
    """How long notebook 4 will take here, from steps measured first: what fit_or_load will do with the run's
    folder (train it, continue it from its last epoch, or load it finished and train nothing), and an LR range test
    of `lr_test_steps` batches (at most: it stops early when the loss climbs); and the full recipe here.
    figures: timed_passes' of `run` on `data`, where they were measured already."""
    config = run.config
    figures = figures or timed_passes(run, data)
    epoch = epoch_seconds(data, figures)
    status, saved = saved_run(config)
    if status == FINISHED:
        training, work = 0.0, f"loads the finished run in {config.out} and trains nothing"
    elif status == UNFINISHED:
        left = config.epochs - len(saved["epochs"])
        training = left * epoch
        work = f"{duration(training)} to continue the run in {config.out}: its last {left} of {config.epochs} epoch(s)"
    else:
        training = config.epochs * epoch
        work = f"{duration(training)} for {config.epochs} epoch(s)"
    lr_test = lr_test_steps * config.batch_size / figures["train_images_per_s"]
    total = training + lr_test
    text = f"about {duration(total)} here: {work}"
    if lr_test_steps:
        text += f"; at most {duration(lr_test)} for the LR range test's {lr_test_steps} steps"
    text += f" ({measured(figures)}); "
    if config.batch_size == BATCH_SIZE:  # the rate holds for the recipe too
        recipe = EPOCHS * (TRAIN_IMAGES / figures["train_images_per_s"] + TEST_IMAGES / figures["eval_images_per_s"])
        text += f"the full recipe (100 epochs of 50,000 images) would take about {duration(recipe)} here: "
    else:
        text += "the full recipe: "
    return text + "python -m helpers train, or RUN = 'recipe'"


def estimate_epochs(run: Settled, data, epochs: int) -> str:
    """How long `epochs` epochs of `run` take here, from steps measured first: what `python -m helpers train`
    says before it trains."""
    figures = timed_passes(run, data)
    return f"about {duration(epochs * epoch_seconds(data, figures))} here for {epochs} epoch(s) ({measured(figures)})"


def epoch_seconds(data, figures: dict) -> float:
    """One epoch over `data` at timed_passes' rates: training, then evaluation."""
    return len(data.train_labels) / figures["train_images_per_s"] + len(data.test_labels) / figures["eval_images_per_s"]


def measured(figures: dict) -> str:
    """How the rates were measured, in words."""
    return f"measured: {figures['steps']} steps from a fresh pass, median of 3"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
