"""One training step of detection-size backbones: time and peak memory on a CUDA device.

A step is forward + backward of a backbone on a (2, 3, 800, 1333) batch under AMP (the loss is the sum of the
means of its feature maps, so every output gets a gradient); the figure is the median milliseconds of ``repeat``
steps after ``warmup`` steps, and the peak is ``torch.cuda.max_memory_allocated`` over them. Backbones:
MSVMamba-T (four feature maps, compiled scan and PyTorch scan) and, from torchvision, Swin-T and ConvNeXt-T (their
``features`` trunks: what a detector's backbone runs; no OpenMMLab needed).
"""
import statistics
from typing import Callable, Dict, List, Optional, Tuple

import torch

from ..models import MSVMamba
from ..ops import use_backend
from ..timing import time_runs

SHAPE = (2, 3, 800, 1333)


def backbones() -> Dict[str, Tuple[Callable[[], torch.nn.Module], Optional[str]]]:
    """name -> (builder, scan backend or None)."""
    import torchvision
    return {'MSVMamba-T': (lambda: MSVMamba('tiny'), 'compiled'),
            'MSVMamba-T, PyTorch scan': (lambda: MSVMamba('tiny'), 'torch'),
            'Swin-T (torchvision)': (lambda: torchvision.models.swin_t().features, None),
            'ConvNeXt-T (torchvision)': (lambda: torchvision.models.convnext_tiny().features, None)}


def backbone_step(build: Callable[[], torch.nn.Module], backend: Optional[str], amp: str = 'fp16',
                  shape=SHAPE, warmup: int = 3, repeat: int = 5) -> dict:
    """ms per forward + backward step and peak MB of one backbone on CUDA."""
    torch.cuda.empty_cache()
    model = build().cuda().train()
    images = torch.randn(*shape, device='cuda')
    dtype = dict(fp16=torch.float16, bf16=torch.bfloat16)[amp]

    def step():
        with torch.autocast('cuda', dtype=dtype), use_backend(backend or 'auto'):
            outputs = model(images)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        sum(out.float().mean() for out in outputs).backward()
        model.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    torch.cuda.reset_peak_memory_stats()
    wall, _ = time_runs(step, repeat, device='cuda')
    return dict(ms=statistics.median(wall) * 1e3, peak_MB=torch.cuda.max_memory_allocated() / 2**20)


def benchmark_backbones(amp: str = 'fp16', shape=SHAPE, progress=None) -> List[dict]:
    """One row per :func:`backbones` entry: model, shape, amp, ms, peak_MB."""
    rows = []
    for name, (build, backend) in backbones().items():
        row = dict(model=name, shape=list(shape), amp=amp, **backbone_step(build, backend, amp, shape))
        rows.append(row)
        if progress:
            progress(row)
    return rows
