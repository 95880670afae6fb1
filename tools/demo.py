"""The demo: train a small MSVMamba detector (or segmentor) on generated data and show that it learns.

    python tools/demo.py [det|seg] [--work-dir DIR] [--data-root DIR] [--cfg-options KEY=VALUE ...] [--min-gain X]

1. generates the synthetic dataset (tools/make_demo_data.py; skipped when present),
2. trains configs/demo/... with tools/train.py, evaluating the model before training and at the end,
3. draws the trained model's predictions on the validation images (tools/test.py --show-dir),
4. prints the metrics before and after training and writes them to WORK_DIR/demo_summary.json.

Exits with status 1 when a gated metric did not rise by at least --min-gain points (mmmsvmamba/engine/demo.py says
which metrics each demo gates on and why).
"""
import argparse
import json
import math
import os
import subprocess
import sys

from mmmsvmamba.cli import UsageError, run
from mmmsvmamba.engine.demo import DEMOS, data_root_options, gains_and_shortfalls, read_validation_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_step(cmd: list):
    """Run one tool; its own one-line error (status 2) ends the demo with status 2 too, other failures raise."""
    print('+', ' '.join(cmd), flush=True)
    status = subprocess.run(cmd, cwd=ROOT).returncode
    if status == 2:
        raise UsageError(f'{os.path.basename(cmd[1])} stopped on the error above')
    if status:
        raise subprocess.CalledProcessError(status, cmd)


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

    run_step([python, 'tools/make_demo_data.py', '--root', args.data_root, '--which', demo['data']])
    options = ['--cfg-options', *data_root_options(args.task, args.data_root), *args.cfg_options]
    run_step([python, 'tools/train.py', demo['config'], '--work-dir', work_dir, *options])

    results = read_validation_metrics(os.path.join(ROOT, work_dir), demo['metrics'])
    if len(results) < 2:
        raise RuntimeError(f'expected an evaluation before and after training in {work_dir}, found {len(results)}')
    before, after = results[0], results[-1]
    with open(os.path.join(ROOT, work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    show_dir = os.path.join(work_dir, 'predictions')
    run_step([python, 'tools/test.py', demo['config'], checkpoint, '--work-dir', work_dir, '--show-dir', show_dir,
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
            print(f'FAILED: {key} is missing or NaN in an evaluation (does the config log it? see '
                  'mmmsvmamba/engine/demo.py)')
        else:
            print(f'FAILED: {key} rose by {gain:.1f} points, less than the required {min_gain:.1f}')
    if short:
        return 1
    print('OK: ' + ', '.join(f'{key} rose by {gain:.1f} points' for key, gain in gains.items()))
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
