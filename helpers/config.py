"""Every setting of a training run in one place, with the published recipe as the defaults."""
from dataclasses import asdict, dataclass, field, fields

from helpers import UserError

PIPELINES = ("albumentations", "fast")
# Settings that change how a run executes, not what it computes: a resumed run may change them.
RUNTIME_FIELDS = {"device", "data_root", "out", "num_workers", "compile", "progress"}


def setting(default, help):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    epochs: int = setting(100, "epochs to train (published: 100)")
    batch_size: int = setting(64, "images per step (published: 64)")
    max_lr: float = setting(0.017, "OneCycleLR peak learning rate, stepped per batch (published: 0.017)")
    momentum: float = setting(0.9, "SGD momentum (published: 0.9)")
    seed: int = setting(1, "one seed for python, numpy, torch and the augmentations")
    pipeline: str = setting("albumentations", "training data pipeline: 'albumentations' (published, per image on the CPU) or 'fast' (batched on the training device)")
    subset: int | None = setting(None, "train on a class-balanced subset of this many images (default: all 50,000)")
    test_subset: int | None = setting(None, "evaluate on a class-balanced subset of this many test images (default: all 10,000)")
    amp: bool = setting(True, "bfloat16 autocast (CPU and CUDA)")
    channels_last: bool = setting(True, "channels_last memory format")
    device: str = setting("auto", "'auto' (CUDA if present, else CPU), 'cpu', 'cuda' or 'cuda:N'")
    data_root: str | None = setting(None, "folder holding cifar-10-batches-py (default: $CIFAR10_ROOT, else ./data)")
    out: str = setting("runs/latest", "run folder for history.json and checkpoint.pt")
    num_workers: int | None = setting(None, "DataLoader workers for the albumentations pipeline (default: 0 on CPU, 8 on CUDA)")
    compile: bool = setting(False, "torch.compile the model (slower on CPU, measured)")
    progress: bool = setting(True, "tqdm progress bars")

    def validate(self) -> "TrainConfig":
        """Raise UserError, naming the flag to fix, for a value no run can use."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "max_lr": self.max_lr}
        for name, value in positive.items():
            if not value > 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if not 0 <= self.momentum < 1:
            raise UserError(f"--momentum must be in [0, 1), got {self.momentum}")
        if self.pipeline not in PIPELINES:
            raise UserError(f"--pipeline must be one of {', '.join(PIPELINES)}, got {self.pipeline!r}")
        if self.num_workers is not None and self.num_workers < 0:
            raise UserError(f"--num-workers must be 0 or more, got {self.num_workers}")
        return self

    def experiment(self) -> dict:
        """The settings that determine the results (everything but RUNTIME_FIELDS)."""
        return {k: v for k, v in asdict(self).items() if k not in RUNTIME_FIELDS}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
