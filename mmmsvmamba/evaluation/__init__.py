"""Evaluation pieces for the mmseg configs (needs mmseg; imported through ``custom_imports``)."""
from .seg_metrics import PerClassIoUMetric

__all__ = ['PerClassIoUMetric']
