"""The settings of a run: checked once, by settle, and resolved for the hardware; presets."""

from dataclasses import replace

import pytest
import torch

from helpers import UserError
from helpers.config import PREVIEW, SMOKE, Settled, TrainConfig, sized_for, with_preset
from helpers.machinery import hardware
from helpers.training import settle
from runs import SMOKE_CONFIG


# Values whose message the command line tests (test_cli) do not already check.
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(max_lr=float("inf")), "--max-lr must be positive"),
        (dict(test_subset=10_001), "--test-subset must be from 10 to 10000"),
        (dict(num_workers=1000), "--num-workers must be from 0 to 256"),
        (dict(epochs=2.5), "--epochs must be int"),
        (dict(pipeline="dali"), "--pipeline must be one of"),
        (dict(data_root=" "), "--data-root must be a folder's name, not empty"),
    ],
)
def test_bad_settings_are_user_errors(change, message):
    with pytest.raises(UserError, match=message):
        settle(replace(SMOKE_CONFIG, **change))


def test_notebook_runs_are_sized_for_the_device():
    config = TrainConfig()
    on_cpu, on_gpu = Settled(config, CPU), Settled(config, CUDA)  # only the type is asked: no GPU needed
    assert sized_for(on_cpu) == Settled(replace(config, **PREVIEW), CPU)
    assert sized_for(on_gpu) == on_gpu  # the recipe
    smoke = replace(config, **SMOKE, out="runs/latest-smoke")  # beside the run folder: never the learner's run
    assert (
        sized_for(on_gpu, "smoke")
        == Settled(smoke, CUDA)
        == Settled(replace(with_preset(config, "smoke"), out=smoke.out), CUDA)
    )
    assert (
        sized_for(Settled(replace(config, out="../runs/notebook/"), CPU), "smoke").config.out
        == "../runs/notebook-smoke"
    )
    with pytest.raises(UserError, match="RUN must be one of auto, recipe, preview, smoke, got 'full'"):
        sized_for(on_cpu, "full")


CUDA = torch.device("cuda")  # never used to run anything here: only its capability is asked, and mocked


CPU = torch.device("cpu")


def test_auto_settles_pipeline_and_precision_and_explicit_values_stay(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    on_gpu, device = settle(TrainConfig(device="cuda"))
    assert (on_gpu.pipeline, on_gpu.precision, device) == ("fast", "fp16", CUDA)
    on_cpu, device = settle(TrainConfig(device="cpu"))
    assert (on_cpu.pipeline, on_cpu.precision, device) == ("albumentations", "fp32", CPU)
    explicit = TrainConfig(device="cuda", pipeline="albumentations", precision="bf16")
    assert settle(explicit) == (explicit, CUDA)
