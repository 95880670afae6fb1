"""Op-level benchmark of the selective scan: forward and forward+backward time and achieved memory bandwidth.

    python tools/benchmark_scan.py --device cpu --threads 2 --shapes det cls --batch-cls 8
    python tools/benchmark_scan.py --device cpu --threads 2 --backbone-latency
    python tools/benchmark_scan.py --device cuda --dtype bfloat16            # on a GPU machine

Prints a Markdown table: both scan ops at every stage of MSVMamba-T, at the classification (batch 128, 224x224) and
detection (batch 2, 800x1333) shapes. ``--backbone-latency`` instead times whole backbones at 1x3x224x224 against
mmpretrain's ConvNeXt-T and Swin-T (the CPU target: MSVMamba-T within 1.5x of ConvNeXt-T at 2 threads). What is
measured and how: :mod:`mmmsvmamba.analysis.scan_bench`, docs/benchmarks.md.
"""
import argparse
import statistics
import sys
import time

import torch

from mmmsvmamba.analysis import scan_bench
from mmmsvmamba.cli import run


def print_backbone_latency(args):
    print(f'# backbone latency, {args.device}, {torch.get_num_threads()} threads, {args.timer} clock, '
          f'torch {torch.__version__}')
    # thread CPU time ignores the time the thread spends preempted, which dominates wall time on a shared machine
    clock = time.thread_time if args.timer == 'thread' else None
    times = scan_bench.backbone_latency(args.device, args.repeat, clock)
    ratios = scan_bench.latency_ratio(times)
    print(f'| backbone (1x3x224x224, eval) | median (ms) | min (ms) | median / {scan_bench.LATENCY_REFERENCE[:10]} |')
    print('| --- | --- | --- | --- |')
    for name, values in times.items():
        ratio = f'{ratios[name]:.2f}' if ratios else 'n/a'
        print(f'| {name} | {statistics.median(values) * 1e3:.1f} | {min(values) * 1e3:.1f} | {ratio} |')


def print_op_table(args):
    device_name = torch.cuda.get_device_name() if args.device == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    print(f'# selective scan, backend={args.backend}, {args.dtype} inputs, float32 output, {device_name}, '
          f'torch {torch.__version__}')
    print('| shape | stage | op | input | pass | time (ms) | GB/s | ns / scanned element |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    batches = {'cls': args.batch_cls, 'det': args.batch_det}
    for t in scan_bench.scan_timings({shape: batches[shape] for shape in args.shapes}, args.device,
                                     getattr(torch, args.dtype), args.backend, args.repeat):
        print(f'| {t.shape} | {t.stage} | {t.op} | {t.input} | {t.pass_} | {t.seconds * 1e3:.2f} | '
              f'{t.gb_per_s:.1f} | {t.ns_per_element:.2f} |', flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--dtype', default='float32', choices=('float32', 'float16', 'bfloat16', 'float64'))
    parser.add_argument('--backend', default='compiled', choices=('compiled', 'torch'))
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--shapes', nargs='+', default=['cls', 'det'], choices=tuple(scan_bench.SHAPES))
    parser.add_argument('--batch-cls', type=int, default=scan_bench.SHAPES['cls'][0],
                        help='classification batch (paper setting: 128)')
    parser.add_argument('--batch-det', type=int, default=scan_bench.SHAPES['det'][0],
                        help='detection batch (paper setting: 2)')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--backbone-latency', action='store_true', help='time backbones instead of the op')
    parser.add_argument('--timer', default='wall', choices=('wall', 'thread'),
                        help='--backbone-latency clock: wall time, or CPU time of the main thread (with --threads 1)')
    args = parser.parse_args(argv)
    if args.timer == 'thread' and (args.device != 'cpu' or args.threads != 1):
        parser.error('--timer thread measures one CPU thread: use it with --device cpu --threads 1')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.backbone_latency:
        print_backbone_latency(args)
    else:
        print_op_table(args)


if __name__ == '__main__':
    sys.exit(run(main))
