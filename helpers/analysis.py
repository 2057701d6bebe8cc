"""Numbers from a run: milestones of a history, predictions, confusion matrix, per-class accuracy."""
import sys

import numpy as np
import torch

from helpers.checkpoint import load_checkpoint, load_history
from helpers.config import TrainConfig
from helpers.engine import Trainer, make_loaders
from helpers.model import Net

PUBLISHED_ACCURACY = 0.859  # "85.9% within 100 epochs" (first reached at epoch 91; best 86.09%)


def first_epoch_at(epochs: list[dict], accuracy: float):
    """The first epoch whose test accuracy is at least `accuracy`, or None."""
    return next((r["epoch"] for r in epochs if r["test_acc"] >= accuracy), None)


def run_summary(history: dict) -> dict:
    """Best and last test accuracy, first epochs at 85% and 85.9%, and timing of one history.json."""
    epochs = history["epochs"]
    best = max(epochs, key=lambda r: r["test_acc"])
    seconds = sum(r["seconds"] for r in epochs)
    return {
        "epochs": len(epochs),
        "best_acc": best["test_acc"],
        "best_epoch": best["epoch"],
        "last_acc": epochs[-1]["test_acc"],
        "first_epoch_85": first_epoch_at(epochs, 0.85),
        "first_epoch_published": first_epoch_at(epochs, PUBLISHED_ACCURACY),
        "seconds_per_epoch": seconds / len(epochs),
        "seconds_total": seconds,
        "device": history["meta"]["device"],
    }


def summary_table(named_histories: dict) -> str:
    """A markdown table with one row per run: {name: history.json contents}."""
    lines = [
        "| run | epochs | best test acc | last test acc | first epoch >= 85.9% | s/epoch | total | device |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, history in named_histories.items():
        s = run_summary(history)
        lines.append(
            f"| {name} | {s['epochs']} | {s['best_acc']:.2%} (epoch {s['best_epoch']}) | {s['last_acc']:.2%} | "
            f"{s['first_epoch_published'] or 'not reached'} | {s['seconds_per_epoch']:.1f} | "
            f"{s['seconds_total'] / 60:.1f} min | {s['device']} |"
        )
    return "\n".join(lines)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    return matrix.diagonal() / matrix.sum(axis=1)


def predict_test_set(checkpoint_file, data, device="cpu") -> np.ndarray:
    """The labels a saved model predicts for data's test images."""
    checkpoint = load_checkpoint(checkpoint_file)
    config = TrainConfig.from_dict({**checkpoint["config"], "device": device, "pipeline": "fast"})
    model = Net()
    model.load_state_dict(checkpoint["model"])
    device = torch.device(device)
    _, test_loader = make_loaders(data, config, device)
    log_probs, _ = Trainer(model, device, config).predict(test_loader)
    return log_probs.argmax(1).numpy()


if __name__ == "__main__":  # python -m helpers.analysis RUN_FOLDER... prints the results table
    print(summary_table({path.rstrip("/").split("/")[-1]: load_history(path) for path in sys.argv[1:]}))
