"""Op-level benchmark of the selective scan (time and achieved memory bandwidth), and backbone latency.

Shapes are those of MSVMamba-T (v3: Di = 96, 192, 384, 768 per stage) at

* classification: batch 128, 224x224 -> stage maps 56, 28, 14, 7 (half-res 28, 14, 7, 4);
* detection: batch 2, 800x1333 -> 200x334, 100x167, 50x84, 25x42 (half-res 100x167, 50x84, 25x42, 13x21).

Each stage runs the full-resolution scan (``selective_scan_fn``, L = H*W) and the fused half-resolution scan
(``ms2d_half_res_scan``, three routes of the ceil(H/2) x ceil(W/2) map). Bandwidth counts the bytes an ideal
implementation must move: forward reads u, delta, B, C once and writes y; backward reads dout, u, delta, B, C and
writes du, ddelta, dB, dC (parameters are negligible).

:func:`backbone_latency` times whole backbones at 1x3x224x224 (eval, no grad), interleaved round by round so that
a busy machine slows all of them alike: MSVMamba-T with the compiled scan and with the PyTorch scan, and
mmpretrain's ConvNeXt-T and Swin-T when mmpretrain is installed.
"""
import math
import statistics
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Tuple

import torch

from ..models import MSVMamba
from ..ops import ms2d_half_res_scan, selective_scan_fn, use_backend
from ..ops.testing import make_scan_inputs
from ..timing import time_runs
from .models import build_peer_backbone

DIMS = (96, 192, 384, 768)
# shape name -> (default batch, H, W): the paper's settings
SHAPES = {'cls': (128, 224, 224), 'det': (2, 800, 1333)}
LATENCY_PEERS = {'ConvNeXt-T (mmpretrain)': 'convnext-t', 'Swin-T (mmpretrain)': 'swin-t'}
LATENCY_REFERENCE = 'ConvNeXt-T (mmpretrain)'


@dataclass
class ScanTiming:
    shape: str  # e.g. 'cls b128 224x224'
    stage: int  # 1..4
    op: str  # 'selective_scan_fn' or 'ms2d_half_res_scan'
    input: str  # the scanned tensor, e.g. '(128, 96, 56x56)'
    pass_: str  # 'fwd' or 'fwd+bwd'
    seconds: float
    gb_per_s: float
    ns_per_element: float


def stage_maps(height: int, width: int) -> List[Tuple[int, int]]:
    """Stage map sizes of the v3 stem (two stride-2 3x3 convs) and stride-2 downsamples: ceil halvings."""
    sizes, h, w = [], math.ceil(math.ceil(height / 2) / 2), math.ceil(math.ceil(width / 2) / 2)
    for _ in DIMS:
        sizes.append((h, w))
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return sizes


def traffic_bytes(batch, dim, plane, out_elems, in_size, out_size, backward):
    """Ideal bytes: inputs read once, outputs written once (see the module docstring)."""
    fwd = (2 * batch * dim * plane + 2 * batch * plane) * in_size + out_elems * out_size
    if not backward:
        return fwd
    bwd = out_elems * out_size + (2 * batch * dim * plane + 2 * batch * plane) * in_size * 2
    return fwd + bwd


def _bench_op(kind, batch, dim, spatial, device, dtype, backend, repeat):
    """(pass, seconds, GB/s, ns per scanned element) for 'fwd' and 'fwd+bwd' of one scan op."""
    # u and delta in the memory layout the model hands the kernels: channels-last on CPU (docs/architecture.md,
    # "Memory layout"), contiguous (B, D, H, W) on CUDA
    inputs = make_scan_inputs(batch, dim, spatial, dtype=dtype, device=device, channels_last=device == 'cpu')
    if kind == 'full':
        inputs = {k: v.flatten(2) if k in ('u', 'delta') else v.flatten(3) if k in ('B', 'C') else v
                  for k, v in inputs.items()}
        op = selective_scan_fn
    else:
        op = ms2d_half_res_scan

    def run(**kw):
        return op(**kw, delta_softplus=True, backend=backend)

    def forward():
        with torch.no_grad():
            run(**inputs)

    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    out = run(**inputs)
    dout = torch.randn_like(out)  # in the output's layout, as autograd hands it back

    def forward_backward():
        run(**leaves).backward(dout)

    plane = math.prod(spatial)
    in_size, out_size = inputs['u'].element_size(), 4
    scanned = batch * dim * plane * (3 if kind == 'half' else 1)
    for name, fn, backward in (('fwd', forward, False), ('fwd+bwd', forward_backward, True)):
        seconds = statistics.median(time_runs(fn, repeat, warmup=1, device=device)[0])
        gbytes = traffic_bytes(batch, dim, plane, out.numel(), in_size, out_size, backward) / 1e9
        yield name, seconds, gbytes / seconds, seconds / scanned * 1e9


def scan_timings(shapes: Dict[str, int], device: str = 'cpu', dtype: torch.dtype = torch.float32,
                 backend: str = 'compiled', repeat: int = 5) -> Iterator[ScanTiming]:
    """Time both scan ops at every stage of MSVMamba-T for each shape name of :data:`SHAPES` -> batch size."""
    for shape, batch in shapes.items():
        _, height, width = SHAPES[shape]
        for stage, ((h, w), dim) in enumerate(zip(stage_maps(height, width), DIMS)):
            half = (math.ceil(h / 2), math.ceil(w / 2))
            for kind, spatial, label in (('full', (h, w), f'({batch}, {dim}, {h}x{w})'),
                                         ('half', half, f'({batch}, {dim}, {half[0]}x{half[1]}) x3 routes')):
                op = 'selective_scan_fn' if kind == 'full' else 'ms2d_half_res_scan'
                for name, seconds, bandwidth, per_elem in _bench_op(kind, batch, dim, spatial, device, dtype,
                                                                    backend, repeat):
                    yield ScanTiming(f'{shape} b{batch} {height}x{width}', stage + 1, op, label, name, seconds,
                                     bandwidth, per_elem)


def latency_models() -> Dict[str, Tuple[torch.nn.Module, str]]:
    """name -> (backbone in eval mode, scan backend or None): MSVMamba-T twice, and the mmpretrain peers."""
    torch.manual_seed(0)
    msvmamba = MSVMamba('tiny').eval()
    models = {'MSVMamba-T, compiled scan': (msvmamba, 'compiled'), 'MSVMamba-T, PyTorch scan': (msvmamba, 'torch')}
    try:
        import mmpretrain  # noqa: F401
    except ImportError as err:
        print(f'mmpretrain peers skipped: {err}')
        return models
    for name, peer in LATENCY_PEERS.items():
        model = build_peer_backbone(peer)
        model.eval()  # mmpretrain's train() override does not return the module
        models[name] = (model, None)
    return models


def backbone_latency(device: str = 'cpu', repeat: int = 5, cpu_clock=None) -> Dict[str, List[float]]:
    """name -> seconds of each of ``repeat`` rounds (after one warm-up round) of every :func:`latency_models`:
    wall seconds, or ``cpu_clock``'s (e.g. ``time.thread_time``) when given."""
    models = latency_models()
    x = torch.randn(1, 3, 224, 224, device=device)
    times = {name: [] for name in models}
    with torch.no_grad():
        for round_ in range(repeat + 1):  # round 0 warms up
            for name, (model, backend) in models.items():
                model.to(device)
                with use_backend(backend or 'auto'):
                    wall, cpu = time_runs(lambda: model(x), 1, device=device, cpu_clock=cpu_clock or time.process_time)
                if round_:
                    times[name].append((cpu if cpu_clock else wall)[0])
    return times


def latency_ratio(times: Dict[str, List[float]]) -> Dict[str, float]:
    """name -> median time / the ConvNeXt-T median (empty without the reference)."""
    if LATENCY_REFERENCE not in times:
        return {}
    reference = statistics.median(times[LATENCY_REFERENCE])
    return {name: statistics.median(values) / reference for name, values in times.items()}
