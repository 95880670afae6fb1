"""mmmsvmamba: MSVMamba (Multi-Scale VMamba) backbones for mmdet, mmseg and mmpretrain.

``import mmmsvmamba`` (or ``custom_imports=dict(imports=['mmmsvmamba'])`` in a config) registers
``MSVMamba`` in every installed OpenMMLab MODELS registry.
"""
__version__ = '0.1.0'

from . import ops  # noqa: E402
from .models import MSVMamba  # noqa: E402
from .registry import REGISTERED  # noqa: E402

__all__ = ['MSVMamba', 'ops', 'REGISTERED', '__version__']
