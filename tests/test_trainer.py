"""The Trainer's fp16 step on the CPU: the gradient scaler trains, and the steps it skips stop nothing."""

import math

import torch

from helpers.config import Settled, TrainConfig
from helpers.model import Net
from helpers.training import Trainer, divergence, make_optimizer, train_epoch

CPU = torch.device("cpu")


def batches(count, size=8):
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(size, 3, 32, 32, generator=generator), torch.randint(0, 10, (size,), generator=generator))
        for _ in range(count)
    ]


def fp16_trainer(init_scale):
    torch.manual_seed(0)
    model = Net()
    trainer = Trainer(model, Settled(TrainConfig(precision="fp16", device="cpu"), CPU))
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    optimizer, scheduler = make_optimizer(model, TrainConfig(), total_steps=10)
    return model, trainer, optimizer, scheduler


def test_an_fp16_step_on_the_cpu_trains_with_the_gradient_scaler():
    model, trainer, optimizer, scheduler = fp16_trainer(init_scale=2.0**8)
    before = [p.detach().clone() for p in model.parameters()]
    loss, _, nonfinite = train_epoch(trainer, batches(2), optimizer, scheduler, progress=False)
    assert math.isfinite(loss) and nonfinite == 0
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert "scaler" in trainer.training_state(optimizer, scheduler)


def test_steps_the_scaler_skips_for_overflow_do_not_stop_the_run():
    # A scale of 2**40 makes every fp16 gradient overflow: the scaler skips those steps and halves it.
    model, trainer, optimizer, scheduler = fp16_trainer(init_scale=2.0**40)
    before = [p.detach().clone() for p in model.parameters()]
    loss, _, _ = train_epoch(trainer, batches(3), optimizer, scheduler, progress=False)
    assert trainer.scaler.get_scale() < 2.0**40  # steps were skipped
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))  # and changed nothing
    record = {"train_loss": loss, "test_loss": loss}
    assert divergence(model, record, first_loss=loss, fp16=True) is None
