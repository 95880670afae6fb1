"""Which OpenMMLab stack is installed, and the one place that records how the stacks differ.

Two stacks are supported and tested (docs/environment.md has the table): ``'upstream'`` (OpenMMLab's frozen
releases: mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0, numpy 1) and
``'onedl'`` (the maintained OneDL forks: onedl-mmengine 0.10.12, onedl-mmcv 2.3.6, onedl-mmdetection 3.5.1,
onedl-mmsegmentation 1.4.2, onedl-mmpretrain 1.3.6, numpy 2). Same import names; the distribution names tell them
apart. ``STACK`` is None where mmengine is not installed (the backbone needs torch only).
"""
from importlib.metadata import PackageNotFoundError, distribution
from typing import Optional


def _installed_stack() -> Optional[str]:
    for name, stack in (('onedl-mmengine', 'onedl'), ('mmengine', 'upstream')):
        try:
            distribution(name)
        except PackageNotFoundError:
            continue
        return stack
    return None


STACK = _installed_stack()

# `scope::path` config bases that mmengine cannot resolve on a stack: OneDL's mmengine maps the mmseg scope to a
# distribution named 'mmsegmentation', but OneDL's is 'onedl-mmsegmentation' (mmdet and mmpretrain resolve, their
# module names being found on sys.path). Use the file path of the base instead there.
UNRESOLVED_SCOPE_PREFIXES = {'onedl': ('mmseg', )}


def scope_prefix_resolves(scope: str, stack: Optional[str] = STACK) -> bool:
    """Whether configs can inherit ``'<scope>::...'`` bases on ``stack`` (the installed one by default)."""
    return scope not in UNRESOLVED_SCOPE_PREFIXES.get(stack, ())
