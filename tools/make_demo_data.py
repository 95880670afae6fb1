"""Generate the synthetic demo datasets (deterministic; skipped when already up to date).

    python tools/make_demo_data.py [--root data/demo] [--which coco ade] [--num-train 240] [--num-val 60]

Writes <root>/coco (COCO instance format) and <root>/ade (ADE20K layout); see mmmsvmamba/datasets/demo_data.py
for what the images contain.
"""
import argparse
import os
import sys

from mmmsvmamba.cli import UsageError, positive_int, run
from mmmsvmamba.datasets.demo_data import make_ade, make_coco


def main(argv=None):
    parser = argparse.ArgumentParser(description='Generate the synthetic shape datasets of the demos')
    parser.add_argument('--root', default='data/demo', help='output folder (default data/demo)')
    parser.add_argument('--which', nargs='+', choices=['coco', 'ade'], default=['coco', 'ade'])
    parser.add_argument('--num-train', type=positive_int, default=240)
    parser.add_argument('--num-val', type=positive_int, default=60)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if os.path.exists(args.root) and not os.path.isdir(args.root):
        raise UsageError(f'--root {args.root} is a file, not a folder')
    makers = dict(coco=make_coco, ade=make_ade)
    for name in args.which:
        root = makers[name](os.path.join(args.root, name), args.num_train, args.num_val, args.seed)
        print(f'{name}: {root} ({args.num_train} train / {args.num_val} val images)')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
