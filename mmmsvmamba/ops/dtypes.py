"""The precision rule of every scan implementation: half-precision and float32 inputs compute (and return) in
float32, float64 inputs in float64. The official "oflex" kernel does the same; fp16 scan outputs overflow in
training."""
import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 inputs, float32 for every other floating dtype."""
    return torch.float64 if dtype == torch.float64 else torch.float32
