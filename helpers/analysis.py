"""What a trained run shows: its milestones (best and last accuracy, the first epochs at 85% and at the
published 85.9%), and its saved model on the test set: predictions, confusion matrix, per-class accuracy,
and where it looks (Grad-CAM)."""

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from helpers import UserError
from helpers.config import ACCURACY, BATCH_SIZE, EPOCHS, MAX_LR, NUM_CLASSES, PUBLISHED_LOG, TrainConfig
from helpers.machinery.checkpoint import Checkpoint, load_checkpoint, load_history, restore_model  # notebook 5's too
from helpers.machinery.run_folder import FINISHED, run_status
from helpers.model import Net
from helpers.pipelines import device_loader
from helpers.receptive_field import layer_row, receptive_field_table
from helpers.training import Trainer, settle


def first_epoch_at(epochs: list[dict], accuracy: float):
    """The first epoch whose test accuracy is at least `accuracy`, or None."""
    return next((r["epoch"] for r in epochs if r["test_acc"] >= accuracy), None)


def reached(epoch) -> str:
    """A first epoch (first_epoch_at) as shown: its number, or 'not reached' (None)."""
    return "not reached" if epoch is None else str(epoch)


def run_summary(history: dict) -> dict:
    """Best and last test accuracy, first epochs at 85% and 85.9%, and timing of a history (as fit returns
    it, or load_history reads it)."""
    epochs = history["epochs"]
    best = max(epochs, key=lambda r: r["test_acc"])
    seconds = sum(r["seconds"] for r in epochs)
    return {
        "epochs": len(epochs),
        "best_acc": best["test_acc"],
        "best_epoch": best["epoch"],
        "last_acc": epochs[-1]["test_acc"],
        "last_epoch": epochs[-1]["epoch"],
        "first_epoch_85": first_epoch_at(epochs, 0.85),
        "first_epoch_published": first_epoch_at(epochs, ACCURACY),
        "seconds_per_epoch": seconds / len(epochs),
        "seconds_total": seconds,
        "device": history["meta"]["device"],
        "precision": history["config"]["precision"],
    }


def summary_line(history: dict) -> str:
    """One sentence: best and last test accuracy, and their epochs."""
    s = run_summary(history)
    return (
        f"best test accuracy {s['best_acc']:.2%} (epoch {s['best_epoch']}), "
        f"last {s['last_acc']:.2%} (epoch {s['last_epoch']}), in {s['precision']}"
    )


def finished_history(folder):
    """The history of the finished run in `folder` (notebook 4's), or None: no run there, or not finished."""
    try:
        history = load_history(folder)
    except UserError:
        return None
    finished = run_status(history["config"], len(history["epochs"]), TrainConfig.from_dict(history["config"]))
    return history if finished == FINISHED else None


def is_recipe(history: dict) -> bool:
    """Whether a run trained the published recipe: all 50,000 images, 100 epochs, batch 64, max_lr 0.017
    (evaluated on all 10,000 test images)."""
    config = history["config"]
    recipe = {"subset": None, "test_subset": None, "epochs": EPOCHS, "batch_size": BATCH_SIZE, "max_lr": MAX_LR}
    return all(config[name] == value for name, value in recipe.items())


def run_size(history: dict) -> str:
    config = history["config"]
    return f"{config['epochs']} epoch(s) of {config['subset'] or 50_000:,} images"


def verdict(yours) -> str:
    """One sentence: did the learner's finished run (a history, or None) reproduce the published result?"""
    if yours is None:
        return "No finished run of notebook 4 yet: the reference run is analysed below. Train one to compare it."
    if not is_recipe(yours):
        return (f"Your run is a preview ({run_size(yours)}), not the recipe: it is shown, not compared with the "
                f"published {ACCURACY:.1%}.")  # fmt: skip
    s = run_summary(yours)
    where = f"best {s['best_acc']:.2%} (epoch {s['best_epoch']}; published best {PUBLISHED_LOG['best_acc']:.2%})"
    if s["first_epoch_published"] is None:
        outcome = f"Your run did not reproduce the published {ACCURACY:.1%} within {s['epochs']} epochs: {where}."
    else:
        outcome = (f"Your run reproduced the published result: {ACCURACY:.1%} first at epoch "
                   f"{s['first_epoch_published']} (published: {PUBLISHED_LOG['first_epoch_published']}), {where}.")  # fmt: skip
    return outcome + " How far seeds spread is not measured yet, so whether it lies within that spread is unknown."


def milestones(named: dict) -> str:
    """A markdown table of each run's milestones ({name: history}), then the published log's."""
    lines = ["| run | trained | first at 85% | first at 85.9% | best | last |", "|---|---|---:|---:|---:|---:|"]
    for name, history in named.items():
        s = run_summary(history)
        kind = "" if is_recipe(history) else " (a preview)"
        first = [reached(s[key]) for key in ("first_epoch_85", "first_epoch_published")]
        lines.append(f"| {name}{kind} | {run_size(history)}, {s['device']}, {s['precision']} | {first[0]} | {first[1]} "
                     f"| {s['best_acc']:.2%} (epoch {s['best_epoch']}) | {s['last_acc']:.2%} |")  # fmt: skip
    log = PUBLISHED_LOG
    lines.append(f"| published log | 100 epoch(s) of 50,000 images | {reached(log['first_epoch_85'])} | "
                 f"{reached(log['first_epoch_published'])} | {log['best_acc']:.2%} | |")  # fmt: skip
    return "\n".join(lines)


def recorded_command(meta: dict) -> str:
    """The command that made a run, as it is typed today (runs made before `python -m helpers COMMAND` recorded
    the command's file: `train.py --epochs 100`), or the notebook that trained it (a kernel's own command line)."""
    program, _, flags = meta["command"].partition(" ")
    if program.endswith("kernel_launcher.py"):  # ipykernel's, or Colab's: notebook 4 trained it
        return "notebook 4 (helpers.training.fit_or_load)"
    if program in ("train.py", "seeds.py"):
        return f"python -m helpers {program.removesuffix('.py')} {flags}".rstrip()
    return meta["command"]


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    return matrix.diagonal() / matrix.sum(axis=1)


def _loaded(checkpoint) -> Checkpoint:
    return checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)


def trained_model(checkpoint) -> Net:
    """The Net saved in a checkpoint (a run folder, checkpoint.pt, or load_checkpoint's result), on the
    CPU in float32, in eval mode."""
    model = Net()
    restore_model(model, _loaded(checkpoint))
    return model.eval()


def model_input(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 HWC images as the network's input: CHW floats normalised with the training mean and std."""
    tensor = torch.tensor(images).permute(0, 3, 1, 2).float() / 255
    return (tensor - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def on_the_image(maps: torch.Tensor, row: dict, size: int) -> torch.Tensor:
    """A layer's (N, C, n, n) maps on the size x size image: each unit's value where its field is centred (pixel
    start + unit * jump, from the layer's receptive-field row), bilinear between those centres, and the edge units'
    values beyond them. (Upsampling the map to the image's size would put 4x4 unit i at pixel 8i + 3.5; its field
    is centred at 8i.)"""
    units = (torch.arange(size, dtype=maps.dtype) - row["start"]) / row["j_out"]  # each pixel's place among the units
    coords = units / max(row["n_out"] - 1, 1) * 2 - 1  # grid_sample with align_corners: -1 and +1 are the edge units
    x, y = torch.meshgrid(coords, coords, indexing="xy")
    grid = torch.stack([x, y], dim=-1).expand(len(maps), -1, -1, -1)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)


def grad_cam(model: Net, inputs: torch.Tensor, targets, layer="block4.4") -> np.ndarray:
    """Grad-CAM maps (Captum's LayerGradCam on `layer`, the last conv by default) for each input's target class,
    each unit's value placed where its field is centred on the image (`on_the_image`): (N, H, W), non-negative."""
    from captum.attr import LayerGradCam

    model.eval()
    row = layer_row(receptive_field_table(model, tuple(inputs.shape[1:])), layer)
    cam = LayerGradCam(model.logits, dict(model.named_modules())[layer])
    maps = cam.attribute(inputs, target=torch.as_tensor(targets), relu_attributions=True)
    return on_the_image(maps.detach(), row, inputs.shape[-1])[:, 0].numpy()


def predict_test_set(checkpoint, data, device="cpu", precision=None) -> np.ndarray:
    """The labels a saved model (as for trained_model) predicts for data's test images, in the precision it
    was trained in (its config's) unless `precision` ('bf16', 'fp16' or 'fp32') says otherwise."""
    checkpoint = _loaded(checkpoint)
    config = checkpoint.config
    run = settle(replace(config, device=str(device), precision=precision or config.precision))
    log_probs, _ = Trainer(trained_model(checkpoint), run).predict(device_loader(data, run, train=False))
    return log_probs.argmax(1).numpy()
