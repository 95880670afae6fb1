"""Everything owed to a machine with a CUDA device, in one command that writes one results file.

    python tools/gpu_report.py [--out gpu_report] [--skip-build]      # or: make gpu-report

Builds the op for this GPU, checks it against the reference, runs the op tests, the scan benchmark and the
classifier benchmark under the anchors' protocol, and writes OUT/gpu_report.json and OUT/gpu_report.md (see
:mod:`mmmsvmamba.analysis.gpu_report`). Exit status 2 without a CUDA device, 1 if a step failed.
"""
import argparse
import sys

import torch

from mmmsvmamba.analysis.gpu_report import gpu_report
from mmmsvmamba.cli import UsageError, run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='gpu_report', help='output folder (default gpu_report)')
    parser.add_argument('--skip-build', action='store_true', help='use the op as already built')
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise UsageError('no CUDA device is available (this report is for a machine with a GPU)')
    return gpu_report(args.out, args.skip_build)


if __name__ == '__main__':
    sys.exit(run(main))
