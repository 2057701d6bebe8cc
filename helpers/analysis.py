"""A saved model on the test set: predictions, confusion matrix, per-class accuracy."""
from dataclasses import replace

import numpy as np
import torch

from helpers.checkpoint import load_checkpoint, restore_model
from helpers.config import TrainConfig
from helpers.engine import Trainer
from helpers.loaders import make_loaders
from helpers.model import Net
from helpers.recipe import NUM_CLASSES


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    return matrix.diagonal() / matrix.sum(axis=1)


def predict_test_set(checkpoint_file, data, device="cpu", precision=None) -> np.ndarray:
    """The labels a saved model predicts for data's test images, in the precision it was trained in
    (its config's) unless `precision` ('bf16', 'fp16' or 'fp32') says otherwise."""
    checkpoint = load_checkpoint(checkpoint_file)
    config = TrainConfig.from_dict({**checkpoint["config"], "device": device, "pipeline": "fast"})
    if precision is not None:
        config = replace(config, precision=precision).validate()
    model = Net()
    restore_model(model, checkpoint, checkpoint_file)
    device = torch.device(device)
    _, test_loader = make_loaders(data, config, device)
    log_probs, _ = Trainer(model, device, config).predict(test_loader)
    return log_probs.argmax(1).numpy()
