"""Op-level benchmark of the selective scan: forward and forward+backward time and achieved memory bandwidth.

Shapes are those of MSVMamba-T (v3: Di = 96, 192, 384, 768 per stage) at

* classification: batch 128, 224x224 -> stage maps 56, 28, 14, 7 (half-res 28, 14, 7, 4);
* detection: batch 2, 800x1333 -> 200x334, 100x167, 50x84, 25x42 (half-res 100x167, 50x84, 25x42, 13x21).

Each stage runs the full-resolution scan (``selective_scan_fn``, L = H*W) and the fused half-resolution scan
(``ms2d_half_res_scan``, three routes of the ceil(H/2) x ceil(W/2) map). Bandwidth counts the bytes an ideal
implementation must move: forward reads u, delta, B, C once and writes y; backward reads dout, u, delta, B, C and
writes du, ddelta, dB, dC (parameters are negligible). Prints a Markdown table.

``--backbone-latency`` instead times whole backbones at 1x3x224x224 (eval, no grad), interleaved round by round
so that a busy machine slows all of them alike: MSVMamba-T with the compiled scan and with the PyTorch scan,
and mmpretrain's ConvNeXt-T and Swin-T when mmpretrain is installed (the issue's CPU target: MSVMamba-T within
1.5x of ConvNeXt-T at 2 threads).

Examples::

    python tools/benchmark_scan.py --device cpu --threads 2 --shapes det cls --batch-cls 8
    python tools/benchmark_scan.py --device cpu --threads 2 --backbone-latency
    python tools/benchmark_scan.py --device cuda --dtype bfloat16            # on a GPU machine
"""
import argparse
import math
import os
import statistics
import time

import torch

from mmmsvmamba.ops import ms2d_half_res_scan, selective_scan_fn

DIMS = (96, 192, 384, 768)


def stage_maps(height, width):
    """Stage map sizes of the v3 stem (two stride-2 3x3 convs) and stride-2 downsamples: ceil halvings."""
    sizes, h, w = [], math.ceil(math.ceil(height / 2) / 2), math.ceil(math.ceil(width / 2) / 2)
    for _ in DIMS:
        sizes.append((h, w))
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return sizes


def make_inputs(batch, dim, spatial, device, dtype):
    """Scan inputs with u and delta in the memory layout the model hands the kernels: channels-last on CPU
    (docs/architecture.md, "Memory layout"), contiguous (B, D, H, W) on CUDA."""
    param = torch.float64 if dtype == torch.float64 else torch.float32
    layout = torch.channels_last if device == 'cpu' else torch.contiguous_format

    def map_(scale=1.0, shift=0.0):
        return (torch.randn(batch, dim, *spatial, device=device, dtype=dtype) * scale + shift).contiguous(
            memory_format=layout)

    return dict(u=map_(), delta=map_(0.5, -1.0),
                A=-torch.rand(dim, 1, device=device, dtype=param) - 0.5,
                B=torch.randn(batch, 1, 1, *spatial, device=device, dtype=dtype),
                C=torch.randn(batch, 1, 1, *spatial, device=device, dtype=dtype),
                D=torch.randn(dim, device=device, dtype=param),
                delta_bias=torch.randn(dim, device=device, dtype=param) * 0.3)


def traffic_bytes(batch, dim, plane, out_elems, in_size, out_size, backward):
    """Ideal bytes: inputs read once, outputs written once (see the module docstring)."""
    fwd = (2 * batch * dim * plane + 2 * batch * plane) * in_size + out_elems * out_size
    if not backward:
        return fwd
    bwd = out_elems * out_size + (2 * batch * dim * plane + 2 * batch * plane) * in_size * 2
    return fwd + bwd


def timed(fn, device, repeat):
    """Median seconds of ``repeat`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeat):
        if device == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def bench_case(kind, batch, dim, spatial, args, dtype):
    inputs = make_inputs(batch, dim, spatial, args.device, dtype)
    if kind == 'full':
        inputs = {k: v.flatten(2) if k in ('u', 'delta') else v.flatten(3) if k in ('B', 'C') else v
                  for k, v in inputs.items()}

        def op(**kw):
            return selective_scan_fn(**kw, delta_softplus=True, backend=args.backend)
    else:
        def op(**kw):
            return ms2d_half_res_scan(**kw, delta_softplus=True, backend=args.backend)

    def forward():
        with torch.no_grad():
            op(**inputs)

    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    out = op(**inputs)
    out_shape = out.shape
    dout = torch.randn_like(out)  # in the output's layout, as autograd hands it back

    def forward_backward():
        op(**leaves).backward(dout)

    plane = math.prod(spatial)
    out_elems = math.prod(out_shape)
    in_size, out_size = inputs['u'].element_size(), 4
    rows = []
    for name, fn, backward in (('fwd', forward, False), ('fwd+bwd', forward_backward, True)):
        seconds = timed(fn, args.device, args.repeat)
        gbytes = traffic_bytes(batch, dim, plane, out_elems, in_size, out_size, backward) / 1e9
        scanned = batch * dim * plane * (3 if kind == 'half' else 1)
        rows.append((name, seconds, gbytes / seconds, seconds / scanned * 1e9))
    return rows


def backbones():
    """name -> (model in eval mode, scan backend or None)."""
    from mmmsvmamba.models import MSVMamba
    torch.manual_seed(0)
    msvmamba = MSVMamba('tiny')
    msvmamba.eval()
    models = {'MSVMamba-T, compiled scan': (msvmamba, 'compiled'), 'MSVMamba-T, PyTorch scan': (msvmamba, 'torch')}
    try:
        from mmpretrain.models.backbones.convnext import ConvNeXt
        from mmpretrain.models.backbones.swin_transformer import SwinTransformer
    except ImportError as err:
        print(f'mmpretrain peers skipped: {err}')
        return models
    for name, model in (('ConvNeXt-T (mmpretrain)', ConvNeXt('tiny')),
                        ('Swin-T (mmpretrain)', SwinTransformer('tiny', img_size=224))):
        model.eval()  # mmpretrain's train() override does not return the module
        models[name] = (model, None)
    return models


def backbone_latency(args):
    models = backbones()
    x = torch.randn(1, 3, 224, 224, device=args.device)
    # thread CPU time ignores the time the thread spends preempted, which dominates wall time on a shared machine
    clock = time.thread_time if args.timer == 'thread' else time.perf_counter
    times = {name: [] for name in models}
    with torch.no_grad():
        for round_ in range(args.repeat + 1):  # round 0 warms up
            for name, (model, backend) in models.items():
                os.environ['MMMSVMAMBA_SCAN_BACKEND'] = backend or 'auto'
                model.to(args.device)
                if args.device == 'cuda':
                    torch.cuda.synchronize()
                start = clock()
                model(x)
                if args.device == 'cuda':
                    torch.cuda.synchronize()
                if round_:
                    times[name].append(clock() - start)
    reference = statistics.median(times['ConvNeXt-T (mmpretrain)']) if 'ConvNeXt-T (mmpretrain)' in times else None
    print('| backbone (1x3x224x224, eval) | median (ms) | min (ms) | median / ConvNeXt-T |')
    print('| --- | --- | --- | --- |')
    for name, values in times.items():
        median = statistics.median(values)
        ratio = f'{median / reference:.2f}' if reference else 'n/a'
        print(f'| {name} | {median * 1e3:.1f} | {min(values) * 1e3:.1f} | {ratio} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--dtype', default='float32', choices=('float32', 'float16', 'bfloat16', 'float64'))
    parser.add_argument('--backend', default='compiled', choices=('compiled', 'torch'))
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--shapes', nargs='+', default=['cls', 'det'], choices=('cls', 'det'))
    parser.add_argument('--batch-cls', type=int, default=128, help='classification batch (paper setting: 128)')
    parser.add_argument('--batch-det', type=int, default=2, help='detection batch (paper setting: 2)')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--backbone-latency', action='store_true', help='time backbones instead of the op')
    parser.add_argument('--timer', default='wall', choices=('wall', 'thread'),
                        help='--backbone-latency clock: wall time, or CPU time of the main thread (with --threads 1)')
    args = parser.parse_args()
    if args.timer == 'thread' and (args.device != 'cpu' or args.threads != 1):
        parser.error('--timer thread measures one CPU thread: use it with --device cpu --threads 1')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.backbone_latency:
        print(f'# backbone latency, {args.device}, {torch.get_num_threads()} threads, {args.timer} clock, '
              f'torch {torch.__version__}')
        backbone_latency(args)
        return
    dtype = getattr(torch, args.dtype)
    device_name = torch.cuda.get_device_name() if args.device == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    print(f'# selective scan, backend={args.backend}, {args.dtype} inputs, float32 output, {device_name}, '
          f'torch {torch.__version__}')
    print('| shape | stage | op | input | pass | time (ms) | GB/s | ns / scanned element |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    settings = {'cls': (args.batch_cls, 224, 224), 'det': (args.batch_det, 800, 1333)}
    for shape in args.shapes:
        batch, height, width = settings[shape]
        for stage, ((h, w), dim) in enumerate(zip(stage_maps(height, width), DIMS)):
            half = (math.ceil(h / 2), math.ceil(w / 2))
            for kind, spatial, label in (('full', (h, w), f'({batch}, {dim}, {h}x{w})'),
                                         ('half', half, f'({batch}, {dim}, {half[0]}x{half[1]}) x3 routes')):
                for name, seconds, bandwidth, per_elem in bench_case(kind, batch, dim, spatial, args, dtype):
                    op = 'selective_scan_fn' if kind == 'full' else 'ms2d_half_res_scan'
                    print(f'| {shape} b{batch} {height}x{width} | {stage + 1} | {op} | {label} | {name} | '
                          f'{seconds * 1e3:.2f} | {bandwidth:.1f} | {per_elem:.2f} |', flush=True)


if __name__ == '__main__':
    main()
