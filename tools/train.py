"""Train a detection, segmentation or classification config with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CHECKPOINT]] [--amp] [--auto-scale-lr]
                                 [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

The config's default_scope (mmdet / mmseg / mmpretrain) decides which library runs it. For several processes use
tools/dist_train.sh (torchrun) or tools/slurm_train.sh; without GPUs the processes talk over gloo.
"""
import argparse
import sys

from mmmsvmamba.cli import UsageError, existing_file, run
from mmmsvmamba.engine.launch import (adapt_to_cpu_distributed, add_runner_args, build_runner, check_data,
                                      end_distributed, load_config, parse_runner_args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an MSVMamba detector, segmentor or classifier')
    parser.add_argument('config', help='config file')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                        help='resume from CHECKPOINT, or, without a value, from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed-precision training (needs a GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by (total batch size / auto_scale_lr.base_batch_size)')
    add_runner_args(parser, 'train_cfg.max_epochs=3 "model.backbone.arch=nano"')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)

    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
            raise UsageError(f'--amp needs optim_wrapper.type OptimWrapper, the config has {cfg.optim_wrapper.type}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise UsageError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = existing_file('--resume: checkpoint', args.resume)
    check_data(cfg, ('train', 'val'))

    adapt_to_cpu_distributed(cfg)
    runner = build_runner(cfg)
    runner.train()
    end_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
