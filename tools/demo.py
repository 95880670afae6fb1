"""The demo: train a small MSVMamba detector (or segmentor) on generated data and show that it learns.

    python tools/demo.py [det|seg] [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--min-gain X]

1. generates the synthetic dataset (tools/make_demo_data.py; skipped when present),
2. trains configs/demo/... with tools/train.py, evaluating the model before training and at the end,
3. draws the trained model's predictions on the validation images (tools/test.py --show-dir),
4. prints the metrics before and after training and writes them to WORK_DIR/demo_summary.json.

Exits with status 1 when a gated metric did not rise by at least --min-gain points: COCO box mAP for det; for
seg mIoU, mAcc and the IoU of every shape class, so that a model that learnt only some classes fails (mIoU alone
rises with the background's IoU even when every pixel is labelled background).
"""
import argparse
import glob
import json
import math
import os
import subprocess
import sys

from mmmsvmamba.datasets.demo_data import CLASSES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE_IOUS = tuple(f'IoU.{name}' for name in CLASSES)
DEMOS = {
    'det': dict(config='configs/demo/mask_rcnn_msvmamba_demo_shapes.py', data='coco', work_dir='work_dirs/demo_det',
                metrics=('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'), scale=100.0,
                gated=('coco/bbox_mAP', ), min_gain=8.0),
    # per-class scalars come from PerClassIoUMetric (mmmsvmamba.evaluation)
    'seg': dict(config='configs/demo/upernet_msvmamba_demo_shapes.py', data='ade', work_dir='work_dirs/demo_seg',
                metrics=('mIoU', 'mAcc', 'aAcc', 'IoU.background', *SHAPE_IOUS), scale=1.0,
                gated=('mIoU', 'mAcc', *SHAPE_IOUS), min_gain=10.0),
}


def data_root_options(task: str, data_root: str) -> list:
    """--cfg-options that point the demo config of ``task`` at the data generated under ``data_root``."""
    root = os.path.join(data_root, DEMOS[task]['data']).rstrip('/') + '/'
    options = [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]
    if task == 'det':  # the COCO evaluator reads the annotations itself
        options += [f'{split}_evaluator.ann_file={root}annotations/instances_val.json' for split in ('val', 'test')]
    return options


def read_validation_metrics(work_dir: str, keys) -> list:
    """Validation results of the latest run in ``work_dir``, in order, from mmengine's scalars.json."""
    runs = sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not runs:
        raise FileNotFoundError(f'no vis_data/scalars.json under {work_dir}: did training run?')
    results = []
    with open(runs[-1]) as f:
        for line in f:
            record = json.loads(line)
            if keys[0] in record:
                results.append({k: record[k] for k in keys if k in record} | dict(step=record.get('step')))
    return results


def gains_and_shortfalls(before: dict, after: dict, gated, scale: float, min_gain: float) -> tuple:
    """Rise of each gated metric in points, and those that rose by less than ``min_gain``; a metric missing from
    either evaluation, or NaN there, counts as a shortfall."""
    gains = {key: (after.get(key, math.nan) - before.get(key, math.nan)) * scale for key in gated}
    return gains, {key: gain for key, gain in gains.items() if not gain >= min_gain}


def run(cmd: list):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Train a small MSVMamba on generated data and show it learning')
    parser.add_argument('task', nargs='?', choices=sorted(DEMOS), default='det')
    parser.add_argument('--work-dir', help='default work_dirs/demo_det or work_dirs/demo_seg')
    parser.add_argument('--data-root', default='data/demo', help='where the generated data goes')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed on to tools/train.py')
    parser.add_argument('--min-gain', type=float,
                        help='required rise of each gated metric, in points (default 8 for box mAP, 10 for the seg '
                        'metrics)')
    args = parser.parse_args(argv)
    demo = DEMOS[args.task]
    work_dir = args.work_dir or demo['work_dir']
    min_gain = demo['min_gain'] if args.min_gain is None else args.min_gain
    python = sys.executable

    run([python, 'tools/make_demo_data.py', '--root', args.data_root, '--which', demo['data']])
    options = ['--cfg-options', *data_root_options(args.task, args.data_root), *args.cfg_options]
    run([python, 'tools/train.py', demo['config'], '--work-dir', work_dir, *options])

    results = read_validation_metrics(os.path.join(ROOT, work_dir), demo['metrics'])
    if len(results) < 2:
        raise RuntimeError(f'expected an evaluation before and after training in {work_dir}, found {len(results)}')
    before, after = results[0], results[-1]
    with open(os.path.join(ROOT, work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    show_dir = os.path.join(work_dir, 'predictions')
    run([python, 'tools/test.py', demo['config'], checkpoint, '--work-dir', work_dir, '--show-dir', show_dir,
         *options])

    scale = demo['scale']
    gains, short = gains_and_shortfalls(before, after, demo['gated'], scale, min_gain)
    summary = dict(config=demo['config'], checkpoint=checkpoint, predictions=show_dir,
                   before_training=before, after_training=after, gain_points=gains, min_gain_points=min_gain)
    with open(os.path.join(ROOT, work_dir, 'demo_summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)

    print(f'\n{"metric":<20}{"untrained":>12}{"trained":>12}')
    for key in demo['metrics']:
        print(f'{key:<20}{before.get(key, math.nan) * scale:>12.1f}{after.get(key, math.nan) * scale:>12.1f}')
    print(f'\npredictions drawn in {show_dir}/, summary in {work_dir}/demo_summary.json')
    for key, gain in short.items():
        if math.isnan(gain):
            print(f'FAILED: {key} is missing or NaN in an evaluation (does the config log it? see DEMOS in this file)')
        else:
            print(f'FAILED: {key} rose by {gain:.1f} points, less than the required {min_gain:.1f}')
    if short:
        return 1
    print('OK: ' + ', '.join(f'{key} rose by {gain:.1f} points' for key, gain in gains.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
