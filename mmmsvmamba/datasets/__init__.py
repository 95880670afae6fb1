"""Data pieces for the mmdet/mmseg/mmpretrain configs: a strict image loader and the synthetic demo datasets.

Imported by the configs through ``custom_imports`` (it needs mmcv, which the backbone alone does not).
"""
from .demo_data import CLASSES, PALETTE, SEG_CLASSES, SEG_PALETTE, make_ade, make_coco, render_image
from .transforms import StrictLoadImageFromFile

__all__ = [
    'CLASSES', 'PALETTE', 'SEG_CLASSES', 'SEG_PALETTE', 'StrictLoadImageFromFile', 'make_ade', 'make_coco',
    'render_image'
]
