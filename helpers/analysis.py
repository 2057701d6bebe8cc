"""A saved model on the test set: predictions, confusion matrix, per-class accuracy, where it looks (Grad-CAM)."""

from dataclasses import replace

import numpy as np
import torch

from helpers.checkpoint import load_checkpoint, restore_model
from helpers.config import TrainConfig
from helpers.engine import Trainer
from helpers.loaders import device_loader
from helpers.model import Net
from helpers.recipe import NUM_CLASSES


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    return matrix.diagonal() / matrix.sum(axis=1)


def trained_model(checkpoint_file) -> Net:
    """The Net saved in a checkpoint (or run folder), on the CPU in float32, in eval mode."""
    model = Net()
    restore_model(model, load_checkpoint(checkpoint_file))
    return model.eval()


def model_input(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 HWC images as the network's input: CHW floats normalised with the training mean and std."""
    tensor = torch.tensor(images).permute(0, 3, 1, 2).float() / 255
    return (tensor - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def grad_cam(model: Net, inputs: torch.Tensor, targets, layer="block4.4") -> np.ndarray:
    """Grad-CAM maps (Captum's LayerGradCam on `layer`, the last conv by default) for each input's
    target class, upsampled bilinearly to the input size: (N, H, W), non-negative."""
    from captum.attr import LayerAttribution, LayerGradCam

    model.eval()
    cam = LayerGradCam(model.logits, dict(model.named_modules())[layer])
    maps = cam.attribute(inputs, target=torch.as_tensor(targets), relu_attributions=True)
    return (
        LayerAttribution.interpolate(maps, tuple(inputs.shape[-2:]), interpolate_mode="bilinear")[:, 0].detach().numpy()
    )


def predict_test_set(checkpoint_file, data, device="cpu", precision=None) -> np.ndarray:
    """The labels a saved model predicts for data's test images, in the precision it was trained in
    (its config's) unless `precision` ('bf16', 'fp16' or 'fp32') says otherwise."""
    checkpoint = load_checkpoint(checkpoint_file)
    config = TrainConfig.from_dict(checkpoint["config"])
    if precision is not None:
        config = replace(config, precision=precision).validate()
    model = Net()
    restore_model(model, checkpoint)
    device = torch.device(device)
    test_loader = device_loader(data, config, device, train=False)
    log_probs, _ = Trainer(model, device, config).predict(test_loader)
    return log_probs.argmax(1).numpy()
