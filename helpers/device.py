"""Which device a run uses, its name for the record, and the settings that follow from it."""

import os
import platform
from dataclasses import replace

import torch

from helpers import UserError
from helpers.config import PREVIEW, RUNS, SMOKE, TrainConfig


def resolve_device(name: str) -> torch.device:
    """'auto' (CUDA if present, else CPU), 'cpu', 'cuda' or 'cuda:N', checked against what torch sees."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but torch sees no CUDA GPU: use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r} is not supported: use auto, cpu, cuda or cuda:N")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX on this CPU: without them, bf16 autocast is emulated and slower than fp32."""
    if hasattr(torch.cpu, "get_capabilities"):
        capabilities = torch.cpu.get_capabilities()
        return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def auto_precision(device: torch.device) -> str:
    """bf16 where the hardware has it (CUDA compute capability 8.0+, CPUs with native bf16),
    fp16 with a gradient scaler on older CUDA GPUs (T4, V100: no bf16 units), fp32 elsewhere."""
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return "bf16" if major >= 8 else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def settle(config: TrainConfig) -> tuple[TrainConfig, torch.device]:
    """The one place a run's settings are checked and fixed for the hardware: `config` validated, with
    its 'auto' pipeline and precision settled for its device, and that device."""
    config.validate()
    device = resolve_device(config.device)
    pipeline = config.pipeline
    if pipeline == "auto":  # on a GPU, per-image CPU augmentation would keep it waiting
        pipeline = "fast" if device.type == "cuda" else "albumentations"
    precision = auto_precision(device) if config.precision == "auto" else config.precision
    return replace(config, pipeline=pipeline, precision=precision), device


def describe(config: TrainConfig, device: torch.device) -> str:
    """What a settled run will do, in one line."""
    images = f"{config.subset:,}" if config.subset else "50,000"
    return (
        f"training on {device_name(device)}: {config.epochs} epoch(s) of {images} images, "
        f"{config.pipeline} pipeline, {config.precision}"
    )


def sized_for(config: TrainConfig, device: torch.device, run="auto") -> TrainConfig:
    """`config` sized for where it runs: 'recipe' as it is, 'preview' (PREVIEW) or 'smoke' (SMOKE);
    'auto' is the recipe on a GPU and the preview on a CPU, where the recipe takes hours."""
    if run not in RUNS:
        raise UserError(f"RUN must be one of {', '.join(RUNS)}, got {run!r}")
    if run == "auto":
        run = "recipe" if device.type == "cuda" else "preview"
    return replace(config, **{"recipe": {}, "preview": PREVIEW, "smoke": SMOKE}[run])
