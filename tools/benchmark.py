"""Throughput and peak memory of MSVMamba models next to their peers, with the protocol of the official H100 figures.

    python tools/benchmark.py classify [ARCH ...] [--peers convnext-t swin-t resnet50] [protocol options]
    python tools/benchmark.py classify [ARCH ...] --runtimes pytorch onnxruntime --modes infer --peers
    python tools/benchmark.py scaling  [ARCH ...] [--peers swin-t] [--sizes 224 512 1024 1280x800 ...]
    python tools/benchmark.py config   CONFIG [CONFIG ...] [--infer-shape H W] [--train-shape H W]
    python tools/benchmark.py classify ... --compile                  # every model under torch.compile
    python tools/benchmark.py classify ... --official-scratch DIR     # and the official v3 Tiny (CUDA)
    python tools/benchmark.py backbone [--amp fp16]                   # detection-size backbone steps (CUDA)
    python tools/benchmark.py config   configs/mask_rcnn_msvmamba_t_1x.py --modes infer --runtimes pytorch onnxruntime
    python tools/benchmark.py plot     RESULT.json [RESULT.json ...] [--out-dir docs] [--tag cpu]

The protocol (GPU: batch 128, 224x224, AMP fp16, as the official H100 figures; CPU: fp32, batch 8, one process per
measurement) is described in :mod:`mmmsvmamba.analysis.benchmark`. ``classify`` and ``scaling`` need only torch:
without mmpretrain our classifier is built in plain PyTorch (same parameters), and the peers come from torchvision
when it is installed (``--peer-source``); ``--runtimes ... onnxruntime`` also times our classifiers exported to
ONNX in onnxruntime (CPU inference; needs requirements/deploy.txt) and reports its ratio to PyTorch. ``config``
needs mmengine and mmdet or mmseg; ``plot`` needs matplotlib. ``--official-scratch`` takes the scratch copy of the
official code that ``tools/gpu_report.py --official CLONE`` prepares and builds (:mod:`mmmsvmamba.analysis.official`)
and adds its rows and ours / official ratios. ``backbone`` times forward + backward of MSVMamba-T (compiled and
PyTorch scan), Swin-T and ConvNeXt-T backbones at 2x3x800x1333 (:mod:`mmmsvmamba.analysis.backbone_step`). See
docs/benchmarks.md.
"""
import argparse
import importlib.util
import json
import os
import sys
from dataclasses import asdict

import torch

from mmmsvmamba.analysis import benchmark as bench
from mmmsvmamba.analysis.models import PEERS, canonical_name
from mmmsvmamba.analysis.plots import plot_results
from mmmsvmamba.cli import run, usage_errors


def _peers(args) -> list:
    """The peers asked for; by default the command's peers if a library provides them, else none (with a note)."""
    if args.peers is not None:
        return [canonical_name(p) for p in args.peers]
    if importlib.util.find_spec('mmpretrain') is None and importlib.util.find_spec('torchvision') is None:
        print('benchmark.py: neither mmpretrain nor torchvision is installed: no peers are measured', file=sys.stderr)
        return []
    return bench.default_peers(args.command)


def _progress(row: dict):
    peak = f"{row['peak_MB']:.0f} MB" if row['peak_MB'] is not None else 'n/a'
    print(f"  {row['model']:<28} {row['runtime']:<11} {row['mode']:<18} bs {row['bs']:<4} res {str(row['res']):<9} "
          f"{row['img_s']:9.2f} img/s  {row['ms_per_img']:9.1f} ms/img  peak {peak}", file=sys.stderr, flush=True)


def measure(args) -> dict:
    protocol = bench.make_protocol(
        args.command, args.device, args.bs, args.res, args.amp, args.warmup, args.runs, args.iters, args.threads,
        {'on': True, 'off': False}.get(args.tf32), not args.no_cudnn_benchmark, not args.no_isolate, args.compile)
    if getattr(args, 'official_scratch', None) and protocol.device != 'cuda':
        raise ValueError('--official-scratch: the official code is measured with its CUDA kernel; use --device cuda')
    with bench.backend_settings(protocol):
        env = bench.environment(protocol)
        output = dict(command=args.command, protocol=asdict(protocol), env=env)
        if args.command == 'classify':
            models = [canonical_name(m) for m in args.models]
            output.update(bench.benchmark_classifiers(models, _peers(args), args.modes, protocol, env,
                                                      args.peer_source, _progress, args.runtimes))
            if args.official_scratch:
                from mmmsvmamba.analysis import official
                try:
                    output['results'] += official.measure(args.official_scratch, args.modes, protocol, _progress)
                except Exception as err:  # kept with what was measured; the command then fails (main)
                    output['official_error'] = f'{type(err).__name__}: {err}'
                output['official_ratios'] = bench.peer_ratios(output['results'], models, [official.OFFICIAL_NAME])
        elif args.command == 'scaling':
            models = [canonical_name(m) for m in args.models] + _peers(args)
            output.update(bench.benchmark_scaling(models, [bench.parse_size(s) for s in args.sizes], protocol,
                                                  args.peer_source, _progress))
        else:
            shapes = dict(infer=args.infer_shape, train=args.train_shape)
            output.update(bench.benchmark_configs(args.configs, args.modes, protocol, shapes, args.bs, _progress,
                                                  args.runtimes))
    if hasattr(os, 'getloadavg'):
        output['env']['load_avg_end'] = [round(x, 2) for x in os.getloadavg()]
    return output


def measure_backbones(args):
    from mmmsvmamba.analysis.backbone_step import benchmark_backbones
    if not torch.cuda.is_available():
        raise ValueError('backbone: no CUDA device is available (the detection-size step is measured on a GPU)')
    output = dict(command='backbone', env=bench.environment(bench.make_protocol('config', 'cuda', amp=args.amp)),
                  results=benchmark_backbones(args.amp, progress=lambda row: print(
                      f"  {row['model']:<28} {row['ms']:8.1f} ms/step  peak {row['peak_MB']:.0f} MB", flush=True)))
    if args.out:
        with open(args.out, 'w') as f:
            f.write(json.dumps(output, indent=1) + '\n')


def format_tables(output: dict) -> str:
    env = output['env']
    lines = [f"device: {env['device']}, torch {env['torch']}, CUDA {env['cuda']}, threads {env['threads']}, "
             f"scan backend {env['scan_backend']}"]
    cpu = env['device_type'] == 'cpu'
    lines.append(f"{'model':<30} {'runtime':<11} {'mode':<15} {'bs':>4} {'res':>9} {'params M':>9} {'img/s':>9} "
                 f"{'peak MB':>8}" + (f" {'img/CPU-s':>10} {'CPU util':>8}" if cpu else ''))
    for row in output['results']:
        peak = f"{row['peak_MB']:8.0f}" if row['peak_MB'] is not None else f"{'n/a':>8}"
        params = f"{row['params_M']:>9.2f}" if row['params_M'] is not None else f"{'':>9}"
        line = (f"{row['model']:<30} {row['runtime']:<11} {row['mode']:<15} {row['bs']:>4} {str(row['res']):>9} "
                f"{params} {row['img_s']:>9.2f} {peak}")
        if cpu:
            line += f" {row['img_per_cpu_s']:>10.2f} {row['cpu_utilisation']:>8.2f}"
        lines.append(line)
    for ratio in output.get('ratios', []):
        peak = f"{ratio['peak_MB_ratio']:.2f}x" if ratio['peak_MB_ratio'] is not None else 'n/a'
        per_cpu = f", per CPU-second {ratio['img_per_cpu_s_ratio']:.2f}x" if 'img_per_cpu_s_ratio' in ratio else ''
        lines.append(f"{ratio['model']} / {ratio['peer']} ({ratio['mode']}): throughput {ratio['img_s_ratio']:.2f}x"
                     f"{per_cpu}, peak memory {peak}")
    for ratio in output.get('official_ratios', []):
        lines.append(f"{ratio['model']} / official ({ratio['mode']}): throughput {ratio['img_s_ratio']:.2f}x, "
                     f"peak memory {ratio['peak_MB_ratio']:.2f}x")
    for ratio in output.get('runtime_ratios', []):
        per_cpu = f", per CPU-second {ratio['img_per_cpu_s_ratio']:.2f}x" if 'img_per_cpu_s_ratio' in ratio else ''
        lines.append(f"{ratio['model']} ({ratio['mode']}, bs {ratio['bs']}): onnxruntime / PyTorch throughput "
                     f"{ratio['img_s_ratio']:.2f}x{per_cpu}")
    for name, entry in output.get('scaling', {}).items():
        for key, what in (('ms_per_img', 'wall'), ('cpu_ms_per_img', 'CPU')):
            if f'{key}_1024_over_512' in entry:
                lines.append(f"{name}: {what} time per image at 1024 / at 512 = {entry[f'{key}_1024_over_512']:.2f}")
    return '\n'.join(lines)


def parse_args(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cuda or cpu (default: cuda when available)')
    common.add_argument('--bs', type=int, help='batch size (default: classify 128 on CUDA, 8 on CPU; scaling 16 on '
                                               'CUDA, 1 on CPU; config 1 for infer, the config\'s for train)')
    common.add_argument('--res', type=int, help='square input size for classify (default 224)')
    common.add_argument('--amp', choices=bench.AMP,
                        help='autocast precision (default fp16 on CUDA, none = fp32 on CPU)')
    common.add_argument('--warmup', type=int, help='warm-up steps (default 10 on CUDA, 1 on CPU)')
    common.add_argument('--runs', type=int, help='timed runs, the median is reported (default 5 on CUDA, 3 on CPU)')
    common.add_argument('--iters', type=int, help='steps per timed run (default 10 on CUDA, 1 on CPU)')
    common.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s choice)')
    common.add_argument('--tf32', choices=('on', 'off', 'default'), default='default',
                        help='TF32 for CUDA matmul and cuDNN (default: keep PyTorch\'s defaults; both are reported)')
    common.add_argument('--no-cudnn-benchmark', action='store_true', help='disable cudnn.benchmark (default on)')
    common.add_argument('--no-isolate', action='store_true',
                        help='CPU: measure in this process (faster; no peak memory is reported then)')
    common.add_argument('--compile', action='store_true', help='time every model under torch.compile')
    common.add_argument('--json', action='store_true', help='print the JSON result instead of tables')
    common.add_argument('--out', help='also write the JSON result to this file')

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    classify = sub.add_parser('classify', parents=[common], help='ImageNet classifiers, ours and the peers')
    classify.add_argument('models', nargs='*', default=['tiny'], help='MSVMamba archs (default tiny)')
    classify.add_argument('--peers', nargs='*', help=f'peers (default {" ".join(PEERS)}, when mmpretrain or '
                                                     'torchvision is installed)')
    classify.add_argument('--modes', nargs='+', choices=bench.MODES, default=list(bench.MODES))
    classify.add_argument('--runtimes', nargs='+', choices=bench.RUNTIMES, default=['pytorch'],
                          help='onnxruntime: also our classifiers exported to ONNX (CPU inference; default pytorch)')
    classify.add_argument('--official-scratch', metavar='DIR',
                          help='also the official v3 Tiny from this scratch copy, built by tools/gpu_report.py '
                               '--official (CUDA only)')
    scaling = sub.add_parser('scaling', parents=[common], help='inference time per image against input size')
    scaling.add_argument('models', nargs='*', default=['tiny'], help='MSVMamba archs (default tiny)')
    scaling.add_argument('--peers', nargs='*', help='peers (default swin-t, when mmpretrain or torchvision is '
                                                    'installed)')
    scaling.add_argument('--sizes', nargs='+', default=list(bench.DEFAULT_SIZES),
                         help='N or HxW (default: %(default)s)')
    for command in (classify, scaling):
        command.add_argument('--peer-source', choices=('auto', 'mmpretrain', 'torchvision'), default='auto',
                             help='where the peers come from (default: mmpretrain, else torchvision)')
    config = sub.add_parser('config', parents=[common], help='detection / segmentation configs: test_step and '
                                                             'train_step on synthetic data')
    config.add_argument('configs', nargs='+', help='mmdet or mmseg config files')
    config.add_argument('--modes', nargs='+', choices=bench.MODES, default=list(bench.MODES))
    config.add_argument('--runtimes', nargs='+', choices=bench.RUNTIMES, default=['pytorch'],
                        help='onnxruntime: also a Mask R-CNN exported to ONNX (CPU inference, batch 1)')
    config.add_argument('--infer-shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='test input (default: detection 1280 800, segmentation 512 2048)')
    config.add_argument('--train-shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='training input (default: detection 800 1333, segmentation 512 512)')
    backbone = sub.add_parser('backbone', help='detection-size backbone steps (2x3x800x1333, forward + backward, '
                                               'CUDA)')
    backbone.add_argument('--amp', choices=('fp16', 'bf16'), default='fp16', help='autocast precision (default fp16)')
    backbone.add_argument('--out', help='also write the JSON result to this file')
    plot = sub.add_parser('plot', help='PNG plots from classify / scaling JSON results')
    plot.add_argument('results', nargs='+', help='JSON files written with --out')
    plot.add_argument('--out-dir', default='docs')
    plot.add_argument('--tag', default='cpu', help='suffix of the PNG names (default cpu)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # an unknown model or size, a missing file or library: the user's to fix
    with usage_errors(ValueError, FileNotFoundError, ImportError):
        if args.command == 'plot':
            for path in plot_results(args.results, args.out_dir, args.tag):
                print(path)
            return
        if args.command == 'backbone':
            return measure_backbones(args)
        output = measure(args)
    text = json.dumps(output, indent=1)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    print(text if args.json else format_tables(output))
    if 'official_error' in output:
        print(f"benchmark.py: the official code was not measured: {output['official_error']}", file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(run(main))
