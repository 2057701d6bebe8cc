"""The hardware behind a run: its device checked against what torch sees, its name for the record, the
precision it runs fastest in (helpers.training.settle asks), and what its fp32 arithmetic is."""

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


def fp32_arithmetic(device: torch.device, precision: str) -> str:
    """What float32 operations of a run on `device` compute in, for its record: "IEEE fp32", or "TF32" where torch
    lets cuDNN convolutions and matmuls on CUDA GPUs of compute capability 8.0 and newer drop to 10-bit mantissas.

    A run in fp32 makes them IEEE fp32 (cuDNN allows TF32 by default), so that fp32 means fp32 on every device;
    autocast runs (bf16, fp16) keep torch's defaults for the few operations they leave in fp32.
    """
    if device.type != "cuda":
        return "IEEE fp32"
    if precision == "fp32":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    tf32 = torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32
    return "TF32" if tf32 and torch.cuda.get_device_capability(device)[0] >= 8 else "IEEE fp32"
