"""mmseg's IoU metric with each class's IoU and accuracy as scalars of their own."""
from typing import Dict, List

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """:class:`mmseg.evaluation.IoUMetric` that also returns ``IoU.<class>`` and ``Acc.<class>`` (in percent).

    mmseg 1.x prints the per-class table to the log but returns only the means (mmseg 0.x returned every class),
    so a run's ``scalars.json`` cannot show that a segmentor learnt one class and not another: a model that labels
    every pixel background still gets the background's IoU into its mIoU. The demo gates on these scalars.
    Classes absent from both the predictions and the labels get NaN, as in mmseg's table. The per-class scalars
    come whatever ``iou_metrics`` asks for; the arguments are those of :class:`mmseg.evaluation.IoUMetric`.
    """

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        intersect, union, pred_area, label_area = (sum(areas) for areas in zip(*results))
        per_class = self.total_area_to_metrics(intersect, union, pred_area, label_area, ['mIoU'], self.nan_to_num)
        for name, iou, acc in zip(self.dataset_meta['classes'], per_class['IoU'], per_class['Acc']):
            metrics[f'IoU.{name}'] = float(np.round(float(iou) * 100, 2))
            metrics[f'Acc.{name}'] = float(np.round(float(acc) * 100, 2))
        return metrics
