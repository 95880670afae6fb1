"""The demos of ``tools/demo.py``: which config each trains on which generated data, which metrics it gates on, and
reading a training run's evaluations back.

* ``det``: Mask R-CNN on the COCO-format shapes; gate: COCO box mAP rises by 8 points.
* ``seg``: UperNet on the ADE20K-format shapes; gate: mIoU, mAcc and the IoU of every shape class rise by 10
  points, so that a model that learnt only some classes fails (mIoU alone rises with the background's IoU even
  when every pixel is labelled background).
"""
import glob
import json
import math
import os
from typing import Dict, Sequence, Tuple

from ..datasets.demo_data import CLASSES

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


def read_validation_metrics(work_dir: str, keys: Sequence[str]) -> list:
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


def gains_and_shortfalls(before: dict, after: dict, gated: Sequence[str], scale: float,
                         min_gain: float) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Rise of each gated metric in points, and those that rose by less than ``min_gain``; a metric missing from
    either evaluation, or NaN there, counts as a shortfall."""
    gains = {key: (after.get(key, math.nan) - before.get(key, math.nan)) * scale for key in gated}
    return gains, {key: gain for key, gain in gains.items() if not gain >= min_gain}
