"""Export an MSVMamba model to ONNX, runnable by stock onnxruntime (no custom-op library).

    python tools/export_onnx.py --arch tiny out/msvmamba_t.onnx [--checkpoint CKPT] [--backbone-only]
    python tools/export_onnx.py --config configs/upernet_msvmamba_t_160k_ade20k.py out/upernet_t.onnx \
        [--checkpoint CKPT] [--cfg-options KEY=VALUE ...]
    python tools/export_onnx.py --config configs/mask_rcnn_msvmamba_t_1x.py out/mask_rcnn_t.onnx [--checkpoint CKPT]
    python tools/export_onnx.py --arch tiny out/msvmamba_t.onnx --verify 256x320
    python tools/export_onnx.py --arch base out/msvmamba_b.onnx --external-data    # + out/msvmamba_b.onnx.data

Batch, height and width stay dynamic. ``--verify HxW`` runs the file in onnxruntime on a random batch of that size
and prints the largest difference from PyTorch, relative to the output's largest magnitude (for a Mask R-CNN: the
detections against mmdet's predict: count, labels, box and score errors, mask IoU). See docs/deploy.md.
"""
import argparse
import json
import sys

from mmmsvmamba.cli import run, usage_errors


def _size(text: str):
    try:
        sizes = [int(v) for v in text.lower().split('x')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected HxW or S, got {text!r}') from None
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f'expected HxW or S with positive sizes, got {text!r}')
    return (sizes[0], sizes[-1])


def _arch(text: str):
    """An arch name, or an arch dict as JSON (e.g. for a small test network)."""
    if text.lstrip().startswith('{'):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f'invalid JSON arch dict: {error}') from None
    return text


def _option(text: str):
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--arch', type=_arch, help='nano | micro | tiny_v1 | tiny | small | base, or a JSON arch '
                        'dict: its ImageNet classifier (logits), or its backbone with --backbone-only')
    source.add_argument('--config', help='an mmpretrain classifier, mmseg segmentor or mmdet Mask R-CNN config')
    parser.add_argument('output', help='the .onnx file to write')
    parser.add_argument('--checkpoint', help='weights: official or mmpretrain for --arch, mmengine for --config')
    parser.add_argument('--backbone-only', action='store_true', help='with --arch: the four stage outputs')
    parser.add_argument('--num-classes', type=int, default=1000, help='with --arch: classes of the head')
    parser.add_argument('--cfg-options', nargs='+', type=_option, default=[], metavar='KEY=VALUE',
                        help='override config entries (values are JSON when they parse as JSON)')
    parser.add_argument('--external-data', action='store_true',
                        help='write the weights to OUTPUT.data beside the graph: onnxruntime maps them from that '
                        'file, which halves the peak memory of creating a session (keep the two files together)')
    parser.add_argument('--verify', type=_size, metavar='HxW', help='check against PyTorch at this input size')
    parser.add_argument('--batch', type=int, default=1, help='batch of the --verify check (a detector: 1)')
    args = parser.parse_args(argv)
    if args.backbone_only and args.config:
        parser.error('--backbone-only goes with --arch')
    if args.cfg_options and not args.config:
        parser.error('--cfg-options goes with --config')
    if args.batch < 1 or args.num_classes < 1:
        parser.error('--batch and --num-classes must be positive')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmmsvmamba.deploy import DeployError, build_model, export_onnx
    from mmmsvmamba.models import CheckpointError
    with usage_errors(DeployError, CheckpointError, FileNotFoundError):
        model = build_model(arch=args.arch, config=args.config, checkpoint=args.checkpoint,
                            backbone_only=args.backbone_only, num_classes=args.num_classes,
                            cfg_options=dict(args.cfg_options) or None)
        info = export_onnx(model, args.output, external_data=args.external_data)
    weights = f' (weights in {info["weights"]})' if info['weights'] else ''
    print(f'wrote {info["path"]}{weights}: {info["nodes"]} nodes, opset {info["opset"]}, inputs {info["inputs"]}, '
          f'outputs {info["outputs"]}, {info["export_s"]} s')
    if args.verify and getattr(model, 'single_image', False):
        _verify_detector(model, args.output, args.verify)
    elif args.verify:
        import torch

        from mmmsvmamba.deploy.onnxruntime import compare_with_torch
        errors = compare_with_torch(model, args.output, torch.randn(args.batch, 3, *args.verify))
        print(f'onnxruntime vs PyTorch at {args.batch}x3x{args.verify[0]}x{args.verify[1]}: ' +
              ', '.join(f'{name} {err:.2e}' for name, err in errors.items()) +
              ' (float outputs: max |difference| / max |PyTorch|; integer outputs: fraction that differ)')
    return 0


def _verify_detector(model, path, size):
    import torch

    from mmmsvmamba.deploy.detector import compare_with_mmdet, within_tolerances
    report = compare_with_mmdet(model, path, torch.randn(1, 3, *size))
    verdict = 'within' if within_tolerances(report) else 'OUTSIDE'
    print(f'onnxruntime vs mmdet predict at 1x3x{size[0]}x{size[1]}: {json.dumps(report)} ({verdict} the '
          'tolerances: boxes 1e-3 of the largest coordinate, scores 1e-4, mask IoU > 0.99)')


if __name__ == '__main__':
    sys.exit(run(main))
