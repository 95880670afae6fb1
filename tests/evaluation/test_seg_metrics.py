"""PerClassIoUMetric returns each class's IoU and accuracy beside mmseg's means, computed by hand here."""
import math

import pytest
import torch

pytest.importorskip('mmseg')
from mmmsvmamba.evaluation import PerClassIoUMetric  # noqa: E402

CLASSES = ('background', 'circle', 'square', 'never_seen')


def _evaluate(pairs, iou_metrics=('mIoU', )):
    metric = PerClassIoUMetric(iou_metrics=list(iou_metrics))
    metric.dataset_meta = dict(classes=CLASSES)
    samples = [dict(pred_sem_seg=dict(data=torch.tensor(pred)[None]), gt_sem_seg=dict(data=torch.tensor(label)[None]))
               for pred, label in pairs]
    metric.process([], samples)
    return metric.evaluate(len(samples))


def test_per_class_iou_and_accuracy():
    # 255 is ignored; class 3 is neither predicted nor labelled
    label = [[0, 0, 1, 1], [2, 2, 255, 1]]
    pred = [[0, 1, 1, 1], [2, 0, 3, 1]]
    metrics = _evaluate([(pred, label)])
    # background: 2 labelled, 2 predicted, 1 shared; circle: 3 labelled, 4 predicted, 3 shared; square: 2, 1, 1
    assert metrics['IoU.background'] == 33.33 and metrics['Acc.background'] == 50.0
    assert metrics['IoU.circle'] == 75.0 and metrics['Acc.circle'] == 100.0
    assert metrics['IoU.square'] == 50.0 and metrics['Acc.square'] == 50.0
    assert math.isnan(metrics['IoU.never_seen']) and math.isnan(metrics['Acc.never_seen'])
    # mmseg's own means are still there and agree (NaN classes left out)
    assert metrics['mIoU'] == round((100 / 3 + 75 + 50) / 3, 2) and metrics['mAcc'] == round(200 / 3, 2)


def test_areas_add_up_over_images():
    first = ([[1, 1]], [[1, 2]])
    second = ([[2, 2]], [[2, 2]])
    metrics = _evaluate([first, second])
    # circle: predicted 2, labelled 1, shared 1; square: predicted 2, labelled 3, shared 2
    assert metrics['IoU.circle'] == 50.0 and metrics['Acc.circle'] == 100.0
    assert metrics['IoU.square'] == round(200 / 3, 2) and metrics['Acc.square'] == round(200 / 3, 2)


def test_per_class_scalars_come_with_other_means_too():
    metrics = _evaluate([([[1, 2]], [[1, 1]])], iou_metrics=('mDice', ))
    assert 'mDice' in metrics and 'mIoU' not in metrics
    assert metrics['IoU.circle'] == 50.0 and metrics['IoU.square'] == 0.0
