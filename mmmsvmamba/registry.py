"""Registers the MSVMamba backbone in the MODELS registry of each OpenMMLab library that is installed.

The only module that imports mmdet, mmseg or mmpretrain. A library that is absent is skipped, so the package
works with any subset of them (or none: the backbone itself needs only torch). ``REGISTERED`` lists where
the backbone went, for tools and tests.
"""
import importlib

from .models import MSVMamba

LIBRARIES = ('mmdet', 'mmseg', 'mmpretrain')
REGISTERED = []


def _register(library: str) -> bool:
    try:
        registry = importlib.import_module(f'{library}.registry')
    except ImportError:
        return False
    registry.MODELS.register_module(name='MSVMamba', module=MSVMamba, force=True)
    return True


for _library in LIBRARIES:
    if _register(_library):
        REGISTERED.append(_library)
