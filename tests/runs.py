"""Short runs and saved runs for the tests: the SMOKE preset on the CPU, trained as the commands train."""

import shutil
from dataclasses import replace

import torch

from helpers.config import TrainConfig, with_preset
from helpers.machinery.checkpoint import load_checkpoint
from helpers.training import fit, settle

REFERENCE = "results/seed1-100ep"  # the 100-epoch reference run, committed with its checkpoint
LONG = "x" * 300  # longer than the 255 bytes a file name may have
# The SMOKE preset on fewer images (120 training, 100 test): the mechanics of a run in half a second an epoch, its last
# batch short (7 x 16 + 8), as the recipe's is.
SMOKE_CONFIG = replace(with_preset(TrainConfig(device="cpu", progress=False), "smoke"), subset=120, test_subset=100)
TWO_EPOCHS = replace(SMOKE_CONFIG, epochs=2)


def train(config, data, resume=None, **kwargs):
    """fit, as the commands call it: the settled run, the checkpoint loaded once."""
    return fit(settle(config), data=data, resume=None if resume is None else load_checkpoint(resume), **kwargs)


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history["epochs"]]


def interrupt(record):
    raise KeyboardInterrupt


def copy_of(folder, tmp_path, name="run"):
    shutil.copytree(folder, tmp_path / name)
    return tmp_path / name


def damaged_checkpoint(folder, tmp_path, damage):
    """A copy of the run in `folder` whose checkpoint `damage` changed."""
    run = copy_of(folder, tmp_path)
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    damage(checkpoint)
    torch.save(checkpoint, run / "checkpoint.pt")
    return run


def history(accuracies, seed=1, device="test device"):
    """A finished run's history as load_history returns it, with these test accuracies, one epoch each."""
    epochs = [{"epoch": i + 1, "test_acc": a, "seconds": 2.0} for i, a in enumerate(accuracies)]
    config = {**vars(TrainConfig()), "precision": "bf16", "epochs": len(epochs), "seed": seed}
    return {"meta": {"device": device, "torch": "2.14.1"}, "config": config, "epochs": epochs}
