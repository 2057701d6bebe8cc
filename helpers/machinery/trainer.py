"""Runs a model on a settled run's device: its memory format, autocast precision, torch.compile, fp16's
gradient scaler, and the training step (torch's, or the StaticStep a CUDA graph will capture).

The training loop (helpers.training), the LR range test, the benchmark and the analysis of a saved model
(predictions) all run the model through it, so that each trains and predicts exactly as the others do.
"""

from contextlib import nullcontext
from functools import partial

import torch
import torch.nn.functional as F

from helpers.config import Settled
from helpers.machinery.static_step import StaticStep

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Trainer:
    """A model on `run.device`, in the run's memory format, precision and compilation.

    fp16 trains with a gradient scaler, which skips the steps whose gradients overflow. The model is moved
    in place, so an optimizer or state dict may hold it before or after.
    static_step: train with `StaticStep` (fixed input buffers, SGD with tensor lr and momentum), the form a
    CUDA graph captures, instead of torch's `optimizer.step()`; not with fp16's scaler.
    """

    def __init__(self, model, run: Settled, static_step=False):
        config, self.device = run
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        model.to(self.device, memory_format=self.memory_format)
        self.model = model  # what is saved: the compiled wrapper's state dict would prefix every key
        self.forward_pass = torch.compile(model) if config.compile else model
        dtype = AUTOCAST_DTYPES.get(config.precision)
        self.autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext()
        self.scaler = torch.amp.GradScaler(self.device.type) if config.precision == "fp16" else None
        if static_step and self.scaler is not None:
            raise ValueError("the static step has no gradient scaler: train fp16 with torch's step")
        self.static_step = static_step
        self._static = None

    def to_device(self, images, labels):
        """A batch on the device, the images in the run's memory format."""
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return images, labels.to(self.device, non_blocking=True)

    def train_step(self, optimizer):
        """What trains one batch on the device, (images, labels) -> (loss, output): torch's step, or the
        StaticStep, built once per optimizer (after its state is restored)."""
        if not self.static_step:
            return partial(self._torch_step, optimizer)
        if self._static is None or self._static.optimizer is not optimizer:
            self._static = StaticStep(self.forward_pass, optimizer, self.autocast)
        return self._static

    def _torch_step(self, optimizer, images, labels):
        with self.autocast:
            output = self.forward_pass(images)
            loss = F.nll_loss(output, labels)
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        return loss, output

    @torch.inference_mode()
    def predict(self, loader):
        """(log-probabilities, labels) for every image in `loader`, on the CPU."""
        self.forward_pass.eval()
        outputs, targets = [], []
        for images, labels in loader:
            images, labels = self.to_device(images, labels)
            with self.autocast:
                outputs.append(self.forward_pass(images).float())
            targets.append(labels)
        return torch.cat(outputs).cpu(), torch.cat(targets).cpu()

    def evaluate(self, loader):
        """(mean loss, accuracy) on `loader`."""
        output, labels = self.predict(loader)
        return F.nll_loss(output, labels).item(), (output.argmax(1) == labels).float().mean().item()

    def training_state(self, optimizer, scheduler) -> dict:
        """What a checkpoint holds to continue training: model, optimizer, schedule (and fp16's scaler)."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state
