"""--precision auto: bf16 where the hardware has it, fp16 with a gradient scaler on older CUDA GPUs, else fp32."""

import math

import pytest
import torch

from helpers import device as device_module
from helpers.config import TrainConfig
from helpers.device import auto_precision, settle
from helpers.engine import Trainer, divergence, make_optimizer
from helpers.model import Net

CUDA = torch.device("cuda")  # never used to run anything here: only its capability is asked, and mocked
CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")]
)
def test_cuda_precision_follows_the_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert auto_precision(CUDA) == expected  # 7.5 is Colab's T4, 7.0 a V100, 8.0 an A100


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_cpu_precision_is_bf16_only_with_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: native)
    assert auto_precision(CPU) == expected


def test_auto_settles_pipeline_and_precision_and_explicit_values_stay(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    on_gpu, device = settle(TrainConfig(device="cuda"))
    assert (on_gpu.pipeline, on_gpu.precision, device) == ("fast", "fp16", CUDA)
    on_cpu, device = settle(TrainConfig(device="cpu"))
    assert (on_cpu.pipeline, on_cpu.precision, device) == ("albumentations", "fp32", CPU)
    explicit = TrainConfig(device="cuda", pipeline="albumentations", precision="bf16")
    assert settle(explicit) == (explicit, CUDA)


def batches(count, size=8):
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(size, 3, 32, 32, generator=generator), torch.randint(0, 10, (size,), generator=generator))
        for _ in range(count)
    ]


def fp16_trainer(init_scale):
    torch.manual_seed(0)
    model = Net()
    trainer = Trainer(model, CPU, TrainConfig(precision="fp16", device="cpu"))
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    optimizer, scheduler = make_optimizer(model, TrainConfig(), total_steps=10)
    return model, trainer, optimizer, scheduler


def test_an_fp16_step_on_the_cpu_trains_with_the_gradient_scaler():
    model, trainer, optimizer, scheduler = fp16_trainer(init_scale=2.0**8)
    before = [p.detach().clone() for p in model.parameters()]
    loss, _, nonfinite = trainer.train_epoch(batches(2), optimizer, scheduler, progress=False)
    assert math.isfinite(loss) and nonfinite == 0
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert "scaler" in trainer.training_state(optimizer, scheduler)


def test_steps_the_scaler_skips_for_overflow_do_not_stop_the_run():
    # A scale of 2**40 makes every fp16 gradient overflow: the scaler skips those steps and halves it.
    model, trainer, optimizer, scheduler = fp16_trainer(init_scale=2.0**40)
    before = [p.detach().clone() for p in model.parameters()]
    loss, _, _ = trainer.train_epoch(batches(3), optimizer, scheduler, progress=False)
    assert trainer.scaler.get_scale() < 2.0**40  # steps were skipped
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))  # and changed nothing
    record = {"train_loss": loss, "test_loss": loss}
    assert divergence(model, record, first_loss=loss, fp16=True) is None
