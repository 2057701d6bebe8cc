"""The step a CUDA graph will capture, run eagerly on the CPU: it must train exactly as torch's SGD does."""

from dataclasses import replace

import pytest
import torch

from helpers.config import Settled, TrainConfig
from helpers.machinery.static_step import TensorSGD
from helpers.model import Net
from helpers.pipelines import DeviceLoader
from helpers.training import Trainer, make_optimizer, train_epoch

CPU = torch.device("cpu")
CONFIG = TrainConfig(device="cpu", precision="fp32", pipeline="fast", batch_size=32)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # TensorSGD steps instead
def test_tensor_sgd_follows_torch_sgd_under_one_cycle_step_for_step():
    steps = 40
    torch.manual_seed(0)
    reference, tensor_model = Net(), Net()
    tensor_model.load_state_dict(reference.state_dict())
    reference_opt, reference_schedule = make_optimizer(reference, CONFIG, total_steps=steps)
    optimizer, schedule = make_optimizer(tensor_model, CONFIG, total_steps=steps)
    sgd = TensorSGD(optimizer)
    seen_momenta = set()
    for _ in range(steps):
        for reference_param, param in zip(reference.parameters(), tensor_model.parameters(), strict=True):
            reference_param.grad = torch.randn_like(reference_param)
            param.grad = reference_param.grad.clone()  # the same gradients: only the updates differ
        reference_opt.step()
        sgd.load_hyperparameters()
        sgd.step()
        # lr and momentum are the schedule's, read back from the tensors (float32 of the group's value)
        group = optimizer.param_groups[0]
        assert sgd.lr.item() == torch.tensor(group["lr"]).item() and sgd.lr.item() > 0
        assert sgd.momentum.item() == torch.tensor(group["momentum"]).item()
        seen_momenta.add(round(group["momentum"], 4))
        for reference_param, param in zip(reference.parameters(), tensor_model.parameters(), strict=True):
            assert torch.equal(
                reference_opt.state[reference_param]["momentum_buffer"], optimizer.state[param]["momentum_buffer"]
            )
            # addcmul and add(alpha=) round alike on the CPUs tried; a fused multiply-add elsewhere may differ by an ulp
            torch.testing.assert_close(param, reference_param, rtol=1e-6, atol=1e-9)
        reference_schedule.step()
        schedule.step()
    assert len(seen_momenta) > 10  # OneCycleLR did cycle the momentum between 0.85 and 0.95


def train(static_step, data, epochs, state=None):
    """Train Net on `data` for `epochs` epochs from `state` (a Trainer.training_state), with fit's model, optimizer,
    schedule and epoch loop; seeded more simply than fit (each epoch's number), the same for both steps."""
    torch.manual_seed(0)
    model = Net()
    trainer = Trainer(model, Settled(CONFIG, CPU), static_step=static_step)
    loader = DeviceLoader(data.train_images, data.train_labels, data.mean, data.std, CONFIG.batch_size, CPU, train=True)
    optimizer, scheduler = make_optimizer(model, CONFIG, total_steps=2 * len(loader))
    first = 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        first = 2
    losses = []
    for epoch in range(first, first + epochs):
        torch.manual_seed(epoch)  # Dropout
        loader.set_seed(epoch)
        losses.append(train_epoch(trainer, loader, optimizer, scheduler, progress=False)[0])
    return losses, trainer, trainer.training_state(optimizer, scheduler)


@pytest.fixture(scope="module")
def data(smoke_data):
    """310 images: batches of 32 leave a short last batch."""
    return replace(smoke_data, train_images=smoke_data.train_images[:310], train_labels=smoke_data.train_labels[:310])


@pytest.fixture(scope="module")
def static_run(data):
    """Two epochs with the static step: (losses, trainer, training state)."""
    return train(True, data, epochs=2)


def test_the_static_step_trains_as_torch_step_does_short_last_batch_included(data, static_run):
    eager_losses, _, eager_state = train(False, data, epochs=2)
    static_losses, trainer, static_state = static_run
    torch.testing.assert_close(static_losses, eager_losses, rtol=1e-5, atol=0)
    for name, value in eager_state["model"].items():
        torch.testing.assert_close(static_state["model"][name], value, rtol=1e-5, atol=1e-7)
    assert trainer._static.images.shape[0] == CONFIG.batch_size  # the short batch did not replace the buffers


def test_a_static_run_resumed_from_its_checkpoint_state_repeats_the_uninterrupted_one(data, static_run):
    whole_losses, _, whole_state = static_run
    first_losses, _, saved = train(True, data, epochs=1)
    resumed_losses, _, resumed_state = train(True, data, epochs=1, state=saved)
    assert first_losses + resumed_losses == whole_losses
    assert all(torch.equal(resumed_state["model"][k], v) for k, v in whole_state["model"].items())
    buffers = [s["momentum_buffer"] for s in resumed_state["optimizer"]["state"].values()]
    assert len(buffers) == len(list(Net().parameters()))  # torch's checkpoint format: one momentum buffer per parameter
