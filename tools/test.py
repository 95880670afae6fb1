"""Evaluate a checkpoint on a config's test set, optionally drawing every prediction into an image.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--tta] [--out FILE]
                                           [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

The config's default_scope (mmdet / mmseg / mmpretrain) decides which library runs it; tools/dist_test.sh runs
it with several processes.
"""
import argparse
import sys

from mmengine.config import ConfigDict

from mmmsvmamba.cli import UsageError, existing_file, run
from mmmsvmamba.engine.launch import (adapt_to_cpu_distributed, add_runner_args, build_runner, check_data,
                                      enable_drawing, end_distributed, load_config, parse_runner_args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test an MSVMamba detector, segmentor or classifier')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file (ours, or an official one, see docs/model_zoo.md)')
    parser.add_argument('--show-dir', help='draw each prediction into an image file in this directory')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation from the config (tta_model / tta_pipeline), e.g. the '
                        'multi-scale + flip mIoU (MS) of the segmentation configs')
    parser.add_argument('--out', help='also dump the raw predictions to this pickle file')
    add_runner_args(parser, 'test_dataloader.batch_size=4')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    cfg.load_from = existing_file('checkpoint', args.checkpoint)
    cfg.resume = False
    if args.show_dir:
        enable_drawing(cfg, args.show_dir)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise UsageError(f'{args.config} defines no tta_model / tta_pipeline, so --tta has nothing to run')
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline

    check_data(cfg, ('test', ))
    adapt_to_cpu_distributed(cfg)
    runner = build_runner(cfg)
    if args.out:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()
    end_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
