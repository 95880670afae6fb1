"""Count the FLOPs and parameters of MSVMamba classifiers, detectors and segmentors the way the official code did.

    python tools/get_flops.py MODEL [MODEL ...] [--shape H [W]] [--json] [--depth N] [--cfg-options K=V ...]

MODEL is an arch of ``MSVMamba.arch_zoo`` (nano, micro, tiny_v1, tiny, small, base, or an alias) or a config file.
An arch means the ImageNet classifier (backbone -> global average pooling -> linear head, 1000 classes) at
224x224. A config's ``default_scope`` picks the task and the default input: 224x224 for mmpretrain, (1280, 800)
for mmdet and (512, 2048) for mmseg, as (H, W): the tensors the official tool fed (YuHengsss/MSVMamba
``analyze/get_flops.py``). The counting convention is in :mod:`mmmsvmamba.analysis.flops` and docs/benchmarks.md.
"""
import argparse
import json
import sys

from mmmsvmamba.analysis.flops import flop_report
from mmmsvmamba.cli import run, usage_errors
from mmmsvmamba.models import MSVMamba

try:  # only configs need mmengine; arch counts run with torch alone
    from mmengine.config import DictAction
except ImportError:
    DictAction = None


def format_report(report: dict) -> str:
    lines = [f"{report['model']} ({report['kind']}), input {tuple(report['input_shape'])}",
             f"  params                       {report['params']:>16,}  ({report['params'] / 1e6:.3f} M)"]
    if report['params_backbone'] is not None:
        lines.append(f"  params of the backbone       {report['params_backbone']:>16,}")
    lines.append(f"  FLOPs (official convention)  {report['flops']:>16,}  ({report['flops'] / 1e9:.3f} G)")
    lines.append(f"  FLOPs (what we compute)      {report['flops_real']:>16,}  ({report['flops_real'] / 1e9:.3f} G)")
    if 'official' in report:
        official = report['official']
        lines.append(f"  official                     {official['gflops']:>18.3f} G  ({official['source']}); "
                     f"ours {official['diff_pct']:+.2f}%")
    if 'num_proposals' in report:
        proposals = report['num_proposals']
        lines.append(f'  proposals through the RoI heads: {proposals} '
                     f'(the mask head takes the first {min(proposals, 100)})')
    lines.append('\n  operator group                      GFLOPs')
    for group, flops in report['flops_by_op'].items():
        lines.append(f'  {group:<30} {flops / 1e9:>11.4f}')
    lines.append('\n  module                                        params       GFLOPs')
    for row in report['flops_by_module']:
        name = row['module']
        indent = '  ' * (name.count('.') + (0 if name == '(model)' else 1))
        lines.append(f"  {indent + name:<40} {row['params']:>12,} {row['flops'] / 1e9:>12.4f}")
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Count FLOPs and parameters of MSVMamba models (official convention)')
    parser.add_argument('models', nargs='+', metavar='MODEL',
                        help=f'an arch ({", ".join(sorted(MSVMamba.arch_zoo))}) or a config file')
    parser.add_argument('--shape', type=int, nargs='+', metavar='SIZE',
                        help='input H [W]; default 224 for an arch, per task for a config '
                             '(classification 224 224, detection 1280 800, segmentation 512 2048)')
    parser.add_argument('--depth', type=int, default=3, help='module depth of the per-module table (default 3)')
    if DictAction is not None:
        parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                            help='override config entries, e.g. model.test_cfg.rpn.max_per_img=300')
    parser.add_argument('--json', action='store_true',
                        help='print JSON (an object; a list of objects for several models) instead of tables')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with usage_errors(ValueError, FileNotFoundError, ImportError):  # an unknown arch, a missing config or library
        options = getattr(args, 'cfg_options', {})
        reports = [flop_report(spec, args.shape, args.depth, cfg_options=options) for spec in args.models]
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=1))
    else:
        print('\n\n'.join(format_report(report) for report in reports))


if __name__ == '__main__':
    sys.exit(run(main))
