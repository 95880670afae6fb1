"""Everything owed to a machine with a CUDA device, in one command that writes one results file.

    python tools/gpu_report.py [--out gpu_report] [--official CLONE] [--budget 530]   # or: make gpu-report
    python tools/gpu_report.py --list                  # every step with its command
    python tools/gpu_report.py --prepare [--official CLONE]    # all that needs no GPU, then stop
    python tools/gpu_report.py --official-smoke CLONE  # CPU: the official v3 Tiny through the harness, PyTorch scan

Builds the op for this GPU, checks it (tests, the official fixture, CUDA vs CPU, AMP training, compute-sanitizer),
benchmarks the scan, the classifiers (eager and torch.compile, with the official code when a clone of
github.com/YuHengsss/MSVMamba is given) and a detection-size backbone step, and writes OUT/gpu_report.json and
OUT/gpu_report.md after every step (see :mod:`mmmsvmamba.analysis.gpu_report`). Exit status 2 without a CUDA
device, 1 if a step failed or was skipped. ``--check NAME --result FILE`` runs one of the report's checks (the
report's own steps call it).
"""
import argparse
import json
import sys
from pathlib import Path

from mmmsvmamba.analysis import gpu_report as report
from mmmsvmamba.cli import UsageError, run, usage_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='gpu_report', help='output folder (default gpu_report)')
    parser.add_argument('--official', metavar='CLONE', help='a git clone of github.com/YuHengsss/MSVMamba: its v3 '
                                                            'Tiny is measured side by side (never copied here)')
    parser.add_argument('--fixture', type=Path, default=report.FIXTURE,
                        help='the official equivalence fixture (default: the copy under tests/data/official)')
    parser.add_argument('--budget', type=float, default=report.DEFAULT_BUDGET,
                        help='seconds for all steps; steps that do not fit are skipped (default %(default)s)')
    parser.add_argument('--skip-build', action='store_true', help='use the op as already built')
    parser.add_argument('--only', nargs='+', metavar='STEP', help='run only these steps (names as --list prints)')
    what = parser.add_mutually_exclusive_group()
    what.add_argument('--list', action='store_true', help='print every step with its command and exit')
    what.add_argument('--prepare', action='store_true', help='do everything that needs no CUDA device, then exit')
    what.add_argument('--official-smoke', metavar='CLONE', help='CPU: import the official code from CLONE with a '
                                                                'PyTorch scan, build v3 Tiny, one forward')
    what.add_argument('--check', choices=report.CHECKS, help='run one check of the report (its steps call this)')
    parser.add_argument('--result', type=Path, help='--check: write its figures to this JSON file')
    parser.add_argument('--size', type=int, default=64, help='--official-smoke: image size (default 64)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out).resolve()
    if args.list:
        print(report.list_steps(out, args.official, args.fixture))
        return 0
    with usage_errors(ValueError):
        if args.prepare:
            for line in report.prepare(out, args.official, args.fixture):
                print(f'prepared: {line}')
            print('prepared: every further step needs a CUDA device')
            return 0
        if args.official_smoke:
            from mmmsvmamba.analysis.official import smoke
            print(json.dumps(smoke(args.official_smoke, out / 'official_scratch', args.size)))
            return 0
    import torch
    if not torch.cuda.is_available():
        raise UsageError('no CUDA device is available (this report is for a machine with a GPU; --list and '
                         '--prepare work without one)')
    if args.check:
        result = report.run_check(args.check, args.fixture, args.official, out)
        print(json.dumps(result, indent=1))
        if args.result:
            args.result.write_text(json.dumps(result, indent=1) + '\n')
        return 0
    with usage_errors(ValueError):  # a missing fixture or clone, found by the preparation
        return report.gpu_report(str(out), args.skip_build, args.official, args.fixture, args.budget, args.only)


if __name__ == '__main__':
    sys.exit(run(main))
