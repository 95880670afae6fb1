"""What tools/train.py and tools/test.py share: arguments, config preparation and checks, CPU-only distributed runs,
runners.

The same tools serve detection, segmentation and classification configs: the config's ``default_scope``
('mmdet', 'mmseg' or 'mmpretrain') decides which library's registries the runner uses. What can only be the user's
mistake (a missing config, checkpoint or dataset, an unknown arch, an option the config cannot take) raises
:class:`mmmsvmamba.cli.UsageError` before anything is built.
"""
import argparse
import os
import os.path as osp
from typing import Iterator, Optional, Sequence

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..cli import UsageError, usage_errors
from ..models import MSVMamba
from . import config


def add_runner_args(parser: argparse.ArgumentParser, cfg_options_example: str) -> None:
    """The options both tools take: --work-dir, --cfg-options, --launcher (set by the dist/slurm scripts) and the
    --local-rank that torch.distributed.launch passes (torchrun sets LOCAL_RANK instead)."""
    parser.add_argument('--work-dir', help='where logs, metrics and checkpoints go (default ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help=f'override config entries, e.g. {cfg_options_example}')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (set by tools/dist_launch.sh and tools/slurm_train.sh)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(path: str, launcher: str = 'none', cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """A config ready for the runner: :func:`mmmsvmamba.engine.config.load_config`, the launcher and the work dir.

    The work dir is, in this order: ``work_dir``, the config's own ``work_dir``, ``./work_dirs/<config name>``.
    A missing config file, a ``default_scope`` of no library, an unknown backbone arch, or ``launcher='pytorch'``
    outside torchrun raise :class:`~mmmsvmamba.cli.UsageError`.
    """
    with usage_errors(FileNotFoundError, ValueError):
        cfg = config.load_config(path, cfg_options)
    check_backbone(cfg)
    if launcher == 'pytorch' and not all(k in os.environ for k in ('RANK', 'WORLD_SIZE')):
        raise UsageError('--launcher pytorch: RANK and WORLD_SIZE are not set; start the tool with torchrun '
                         '(tools/dist_train.sh, tools/dist_test.sh)')
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def check_backbone(cfg: Config) -> None:
    """An MSVMamba backbone's ``arch`` must name an arch or be a valid arch dict (a UsageError naming the choices)."""
    backbone = cfg.get('model', {}).get('backbone') or {}
    if backbone.get('type') == 'MSVMamba':
        with usage_errors(ValueError, TypeError):
            MSVMamba.parse_arch(backbone.get('arch', 'tiny'))


def _datasets(dataset: dict) -> Iterator[dict]:
    """The leaf dataset configs of a (possibly wrapped or concatenated) dataset config."""
    if 'dataset' in dataset:
        yield from _datasets(dataset['dataset'])
    elif 'datasets' in dataset:
        for inner in dataset['datasets']:
            yield from _datasets(inner)
    else:
        yield dataset


def check_data(cfg: Config, splits: Sequence[str]) -> None:
    """The data of the ``splits`` ('train', 'val', 'test') must exist: each dataset's ``data_root``, ``ann_file`` and
    ``data_prefix`` folders, and an evaluator's ``ann_file``. A UsageError names the first missing one and how to
    point the config elsewhere."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or (split != 'train' and cfg.get(f'{split}_cfg') is None):
            continue
        for dataset in _datasets(loader['dataset']):
            root = dataset.get('data_root') or ''
            paths = [root] if root else []
            if isinstance(dataset.get('ann_file'), str) and dataset['ann_file']:
                paths.append(osp.join(root, dataset['ann_file']))
            prefixes = dataset.get('data_prefix') or {}
            paths += [osp.join(root, p) for p in (prefixes.values() if isinstance(prefixes, dict) else [prefixes])
                      if isinstance(p, str) and p]
            for path in paths:
                if '://' not in path and not osp.exists(path):
                    raise UsageError(f'{split} data not found: {path} (set {split}_dataloader.dataset.data_root with '
                                     '--cfg-options, or see docs/detection_segmentation.md for where data go)')
        evaluators = cfg.get(f'{split}_evaluator') if split != 'train' else None
        for evaluator in (evaluators if isinstance(evaluators, (list, tuple)) else [evaluators or {}]):
            ann_file = evaluator.get('ann_file')
            if isinstance(ann_file, str) and not osp.exists(ann_file):
                raise UsageError(f'{split} annotations not found: {ann_file} (set {split}_evaluator.ann_file with '
                                 '--cfg-options)')


def adapt_to_cpu_distributed(cfg: Config) -> bool:
    """Let a launcher run work without GPUs: gloo instead of nccl, and DDP without device ids.

    mmengine's defaults assume one GPU per process (nccl, ``device_ids=[LOCAL_RANK]``, ``cuda.set_device``), so
    a CPU-only ``torchrun`` would fail. The process group is started here, before the runner, which then skips
    its own GPU-bound setup. Returns whether anything was changed.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return False
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if cfg.launcher == 'pytorch' and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                             world_size=int(os.environ['WORLD_SIZE']))
    print_log('no GPU found: distributed run on CPU with the gloo backend', logger='current')
    return True


def end_distributed() -> None:
    """Finish a distributed run, if there is one: a barrier, then tear the process group down.

    Without this a CPU run can abort after it has finished (SIGABRT, "terminate called without an active
    exception"; 1 in 32 two-process demo runs). A gloo worker thread frees the last collective's work item
    (mmengine's broadcast of the validation metrics) after the caller's ``wait()`` has returned; when that
    happens during interpreter shutdown, freeing its Python-owned tensors needs the GIL and the thread is
    killed inside a destructor (seen in a core dump). The barrier holds the interpreter alive, with the GIL
    released, until every earlier collective is done on all ranks; it holds no Python tensors itself.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def build_runner(cfg: Config):
    """The config's ``runner_type`` if it names one, else mmengine's :class:`~mmengine.runner.Runner`."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def enable_drawing(cfg: Config, show_dir: str):
    """Make the test loop draw every prediction into image files under ``show_dir``.

    Each library names its visualisation hook options differently; this maps ``--show-dir`` onto them.
    """
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise UsageError('the config has no default_hooks.visualization, so predictions cannot be drawn; add the '
                         'visualisation hook of its library (see configs/_base_/default_runtime_*.py)')
    scope = cfg.default_scope
    if scope == 'mmdet':
        hook.update(draw=True, test_out_dir=osp.abspath(show_dir))
    elif scope == 'mmseg':
        hook.update(draw=True, interval=1)
        cfg.visualizer['save_dir'] = osp.abspath(show_dir)
    else:
        hook.update(enable=True, interval=1, out_dir=osp.abspath(show_dir))
