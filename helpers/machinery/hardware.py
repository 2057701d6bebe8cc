"""The hardware behind a run: its device checked against what torch sees, its name for the record, and the
precision it runs fastest in (helpers.config.settle asks)."""

import os
import platform

import torch

from helpers import UserError


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
