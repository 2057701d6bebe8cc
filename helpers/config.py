"""What a run is: the published recipe's numbers, every setting of a training run with the recipe as its
defaults, and the presets for shorter runs. Nothing here looks at the hardware: helpers.training.settle fixes a
configuration for the device it runs on."""

import math
import re
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, NamedTuple, get_args

from helpers import UserError

if TYPE_CHECKING:
    import torch

# Training: SGD with momentum and a one-cycle learning rate stepped after every batch.
EPOCHS = 100
BATCH_SIZE = 64
MAX_LR = 0.017
MOMENTUM = 0.9

# The network.
NUM_CLASSES = 10
DROPOUT = 0.03

# Augmentation of the training images, in this order, each applied with probability AUGMENT_P.
AUGMENT_P = 0.5
SHIFT = 0.0625  # ShiftScaleRotate's default shift, a fraction of the image side
SCALE = (0.9, 1.1)
ROTATE = (-45.0, 45.0)
CUTOUT_SIZE = 16  # CoarseDropout: one square hole of this side

# The published result: 85.9% test accuracy within 100 epochs, first reached at epoch 91 (best 86.09%).
ACCURACY = 0.859
FIRST_EPOCH = 91
# The published training log: the first epochs at 85% and at 85.9%, and the best test accuracy.
PUBLISHED_LOG = {"first_epoch_85": 78, "first_epoch_published": FIRST_EPOCH, "best_acc": 0.8609}


def mean_fill(mean) -> tuple[int, ...]:
    """The cutout fill: the dataset mean in the uint8 image's own scale.

    The published fill_value=0.473 was meant as the mean in [0, 1], but the images are uint8,
    so it filled with 0 (black). Filling with the mean makes a hole normalise to about zero.
    """
    return tuple(int(round(m * 255)) for m in mean)


# Settings.
PIPELINES = ("albumentations", "fast")  # what "auto" settles to, by device (settle)
PRECISIONS = ("bf16", "fp16", "fp32")
# Settings that change how a run executes, not what it computes: a resumed run may change them.
RUNTIME_FIELDS = {"device", "data_root", "out", "num_workers", "compile", "progress"}
MAX_SEED = 2**63 - 1
MAX_EPOCHS = 10_000
MAX_WORKERS = 256
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000


def setting(default, description):
    return field(default=default, metadata={"help": description})


@dataclass
class TrainConfig:
    epochs: int = setting(EPOCHS, "epochs to train (published: 100)")
    batch_size: int = setting(BATCH_SIZE, "images per step (published: 64)")
    max_lr: float = setting(MAX_LR, "OneCycleLR peak learning rate, stepped per batch (published: 0.017)")
    momentum: float = setting(
        MOMENTUM,
        "SGD momentum as the optimizer is built (published: 0.9); OneCycleLR then cycles it from 0.95 to 0.85 "
        "and back at every step, so it does not change training",
    )
    seed: int = setting(1, "one seed for python, numpy, torch and the augmentations (0 to 2**63-1)")
    pipeline: str = setting(
        "auto",
        "training data pipeline: 'albumentations' (published, per image on the CPU), "
        "'fast' (batched on the training device) or 'auto' (fast on CUDA, else albumentations)",
    )
    subset: int | None = setting(None, "train on a class-balanced subset of this many images (default: all 50,000)")
    test_subset: int | None = setting(
        None, "evaluate on a class-balanced subset of this many test images (default: all 10,000)"
    )
    precision: str = setting(
        "auto",
        "'bf16' or 'fp16' autocast (fp16 with a gradient scaler), 'fp32', or 'auto': "
        "bf16 where the hardware has it, fp16 on older CUDA GPUs (T4, V100), else fp32",
    )
    channels_last: bool = setting(True, "channels_last memory format")
    device: str = setting("auto", "'auto' (CUDA if present, else CPU), 'cpu', 'cuda' or 'cuda:N'")
    data_root: str | None = setting(
        None, "folder holding cifar-10-batches-py (default: $CIFAR10_ROOT, else the project's data/)"
    )
    out: str = setting("runs/latest", "run folder for history.json and checkpoint.pt")
    num_workers: int | None = setting(
        None,
        "DataLoader workers for the albumentations pipeline (default: 0 on CPU, up to 8 on CUDA); "
        "the results do not depend on it",
    )
    compile: bool = setting(False, "torch.compile the model (off: on the CPU it made training slower)")
    progress: bool = setting(True, "tqdm progress bars")

    def validate(self) -> "TrainConfig":
        """Raise UserError, naming the flag to fix, for a value of the wrong type or out of range."""
        for spec in fields(self):
            kinds = tuple(get_args(spec.type) or [spec.type])
            value = getattr(self, spec.name)
            wrong_bool = isinstance(value, bool) and bool not in kinds
            accepted = kinds + ((int,) if float in kinds else ())
            if wrong_bool or not isinstance(value, accepted):
                raise UserError(
                    f"{flag(spec.name)} must be {' or '.join(k.__name__ for k in kinds)}, got {for_message(value)}"
                )
        checks = [
            ("epochs", 1 <= self.epochs <= MAX_EPOCHS, f"from 1 to {MAX_EPOCHS}"),
            ("batch_size", 1 <= self.batch_size <= TRAIN_IMAGES, f"from 1 to {TRAIN_IMAGES}"),
            ("max_lr", finite_number(self.max_lr) and self.max_lr > 0, "positive and finite"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("seed", 0 <= self.seed <= MAX_SEED, "from 0 to 2**63-1"),
            ("subset", self.subset is None or 10 <= self.subset <= TRAIN_IMAGES, f"from 10 to {TRAIN_IMAGES}"),
            (
                "test_subset",
                self.test_subset is None or 10 <= self.test_subset <= TEST_IMAGES,
                f"from 10 to {TEST_IMAGES}",
            ),
            (
                "num_workers",
                self.num_workers is None or 0 <= self.num_workers <= MAX_WORKERS,
                f"from 0 to {MAX_WORKERS}",
            ),
            ("pipeline", self.pipeline in ("auto", *PIPELINES), f"one of auto, {', '.join(PIPELINES)}"),
            ("precision", self.precision in ("auto", *PRECISIONS), f"one of auto, {', '.join(PRECISIONS)}"),
            ("device", re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device), "auto, cpu, cuda or cuda:N"),
            ("out", self.out.strip() != "", "a folder's name (empty would be the current folder)"),
            ("data_root", self.data_root is None or self.data_root.strip() != "", "a folder's name, not empty"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise UserError(f"{flag(name)} must be {allowed}, got {for_message(getattr(self, name))}")
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """The settings saved with a run (unknown keys ignored), checked like flags."""
        values = dict(values)
        if "amp" in values:  # runs saved before --precision: amp=True meant bf16 autocast
            values.setdefault("precision", "bf16" if values.pop("amp") else "fp32")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known}).validate()


def results_settings(settings: dict) -> dict:
    """The settings that determine a run's results: all of a TrainConfig's (as a dict) but RUNTIME_FIELDS."""
    return {k: v for k, v in settings.items() if k not in RUNTIME_FIELDS}


def finite_number(value) -> bool:
    """A finite int or float (not a bool); an int too large for a float is not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def for_message(value) -> str:
    """A value for an error message; a huge number by its size (Python will not print one of 4,300+ digits)."""
    if isinstance(value, int) and abs(value) >= 10**20:
        return f"a {len(str(abs(value))) if abs(value) < 10**4000 else 'more than 4000'}-digit number"
    return repr(value)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# Presets: shorter runs, applied by `with_preset` alone.
PRESETS = {
    "recipe": {},
    # What notebook 4 trains where there is no GPU: a few minutes on a 2-core CPU, where the recipe takes hours.
    "preview": dict(epochs=5, subset=5000, test_subset=2000),
    # One short epoch that shows the mechanics in seconds, not the accuracy (500 images are too few to beat
    # chance reliably; the tests that check learning give it 1,000). Used by --smoke, bench --dry-run,
    # notebook 4 (SMOKE=1), scripts/gpu_reproduce.sh (TINY=1) and the tests.
    "smoke": dict(epochs=1, subset=500, test_subset=200, batch_size=16, max_lr=0.05),
}
SMOKE, PREVIEW = PRESETS["smoke"], PRESETS["preview"]
RUNS = ("auto", *PRESETS)  # notebook 4's RUN: 'auto' is the recipe on a GPU, the preview on a CPU


def with_preset(config: TrainConfig, name: str) -> TrainConfig:
    """`config` with the settings of preset `name` (PRESETS) in place of its own."""
    return replace(config, **PRESETS[name])


class Settled(NamedTuple):
    """A configuration checked once and resolved for its hardware (helpers.training.settle makes it): what
    training, the pipelines and the Trainer take, and check nothing again."""

    config: TrainConfig  # valid, with pipeline and precision resolved (never 'auto')
    device: "torch.device"


def preset_for(run: Settled, choice="auto") -> str:
    """The preset notebook 4's RUN names: 'auto' is the recipe on a GPU and the preview on a CPU."""
    if choice not in RUNS:
        raise UserError(f"RUN must be one of {', '.join(RUNS)}, got {choice!r}")
    if choice == "auto":
        return "recipe" if run.device.type == "cuda" else "preview"
    return choice


def sized_for(run: Settled, choice="auto") -> Settled:
    """`run` sized by notebook 4's RUN: a preset name, or 'auto': the recipe on a GPU and the preview on a
    CPU, where the recipe takes hours. A smoke run (the tests') goes to its own folder beside the run's, so
    that it never meets, nor replaces, a run a learner trained there."""
    choice = preset_for(run, choice)
    config = with_preset(run.config, choice)
    if choice == "smoke":
        config = replace(config, out=f"{config.out.rstrip('/')}-smoke")
    return Settled(config, run.device)
