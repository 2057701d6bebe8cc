"""--precision auto: bf16 where the hardware has it, fp16 with a gradient scaler on older CUDA GPUs, else fp32."""

import pytest
import torch

from helpers.machinery import hardware
from helpers.machinery.hardware import auto_precision

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
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    assert auto_precision(CPU) == expected


@pytest.mark.parametrize("precision, expected", [("fp32", "IEEE fp32"), ("bf16", "TF32"), ("fp16", "TF32")])
def test_fp32_means_ieee_fp32_on_a_gpu_and_the_record_says_what_was_used(monkeypatch, precision, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))  # an H100/H200
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = True  # torch's default: cuDNN convolutions may run fp32 in TF32
    try:
        assert hardware.fp32_arithmetic(CUDA, precision) == expected
        tf32_off = not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert tf32_off == (precision == "fp32")
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    assert hardware.fp32_arithmetic(CPU, precision) == "IEEE fp32"
