"""The published figures of the MSVMamba configs and of their peers, read from their one source.

``metafile.yml`` beside this module (the OpenMMLab model-index file of the configs, imported by model-index.yml)
holds, per config, the published metrics
with their sources, the published FLOPs with the input they were counted at and their source, the published
parameter count and our exact one. ``published_peers.yml`` holds, in the same layout, the ImageNet-1k
top-1 of the peers that ``tools/benchmark.py`` measures. Everything that prints or checks a published figure
reads it here; the tables of README.md and docs/model_zoo.md are checked against it by tests/analysis.

Both files are package data (setup.py), so the figures read the same from a checkout and from an installed
package (tests/integration/test_installed_package.py). Needs PyYAML only (no mmengine; requirements/runtime.txt).
"""
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import yaml

METAFILE = Path(__file__).with_name('metafile.yml')
PEERS_FILE = Path(__file__).with_name('published_peers.yml')
# metafile metric names -> ours
METRICS = {'Top 1 Accuracy': 'top1', 'box AP': 'box_ap', 'box AP50': 'box_ap50', 'box AP75': 'box_ap75',
           'mask AP': 'mask_ap', 'mask AP50': 'mask_ap50', 'mask AP75': 'mask_ap75', 'mIoU': 'miou',
           'mIoU(ms+flip)': 'miou_ms'}
# the library that runs each dataset's configs (a config's default_scope)
SCOPES = {'ImageNet-1k': 'mmpretrain', 'COCO': 'mmdet', 'ADE20K': 'mmseg'}


@dataclass(frozen=True)
class Figure:
    """A published number and where it was published."""
    value: float
    source: str


@dataclass(frozen=True)
class Speed:
    """The official code's throughput of one model in one mode (``'infer'``, ``'train'``) under a protocol."""
    img_s: float
    peak_MB: float
    device: str
    bs: int
    input: Tuple[int, int]
    precision: str
    source: str


@dataclass(frozen=True)
class Published:
    """What was published about one model of the metafile (or one peer).

    Attributes:
        name: the metafile name, e.g. ``'mask_rcnn_msvmamba_m_1x'``, ``'msvmamba_t_in1k'``, or a peer (``'swin-t'``).
        scope: the library of its task: ``'mmpretrain'``, ``'mmdet'`` or ``'mmseg'``.
        arch: the MSVMamba arch (``'nano'``, ..., ``'tiny_v1'``, ..., ``'base'``); None for a peer.
        config: the config file, relative to the repository root (None for a peer).
        params: the exact parameter count of the model the config builds (ours, not a published figure).
        params_published: the parameter count as published (``'32M'``), or None.
        gflops: the published GFLOPs, or None.
        flops_input: the ``(H, W)`` input the published FLOPs are for, or None.
        metrics: ``'top1'``, ``'box_ap'``, ``'box_ap50'``, ``'box_ap75'``, ``'mask_ap'``, ``'mask_ap50'``,
            ``'mask_ap75'``, ``'miou'``, ``'miou_ms'`` -> :class:`Figure`, those that were published.
        speed: ``'infer'`` / ``'train'`` -> :class:`Speed` of the official code, where it was measured.
    """
    name: str
    scope: str
    arch: Optional[str] = None
    config: Optional[str] = None
    params: Optional[int] = None
    params_published: Optional[str] = None
    gflops: Optional[Figure] = None
    flops_input: Optional[Tuple[int, int]] = None
    metrics: Dict[str, Figure] = field(default_factory=dict)
    speed: Dict[str, Speed] = field(default_factory=dict)


def _arch(backbone: Optional[str]) -> Optional[str]:
    """'MSVMamba-Tiny-v1' -> 'tiny_v1' (the arch_zoo name)."""
    if backbone is None:
        return None
    return backbone[len('MSVMamba-'):].lower().replace('-', '_')


def _entry(model: dict) -> Published:
    meta = model.get('Metadata', {})
    metrics = {}
    for result in model.get('Results', []):
        for name, value in result['Metrics'].items():
            metrics[METRICS[name]] = Figure(float(value), result['Source'])
    flops = meta.get('FLOPs')
    speed = meta.get('Official Speed', {})
    protocol = speed.get('Protocol', {})
    speeds = {mode: Speed(float(speed[mode]['img/s']), float(speed[mode]['peak MB']), speed['Device'],
                          protocol['Batch Size'], tuple(protocol['Input']), protocol['Precision'], speed['Source'])
              for mode in ('infer', 'train') if mode in speed}
    return Published(
        name=model['Name'], scope=SCOPES[meta['Training Data']], arch=_arch(meta.get('Backbone')),
        config=model.get('Config'), params=meta.get('Parameters'), params_published=meta.get('Published Parameters'),
        gflops=None if flops is None else Figure(flops / 1e9, meta['FLOPs Source']),
        flops_input=None if flops is None else tuple(meta['FLOPs Input']), metrics=metrics, speed=speeds)


@functools.lru_cache(maxsize=None)
def _read() -> Dict[str, Published]:
    entries = {}
    for path in (METAFILE, PEERS_FILE):
        with open(path) as f:
            for model in yaml.safe_load(f)['Models']:
                entries[model['Name']] = _entry(model)
    return entries


def published_figures() -> Dict[str, Published]:
    """Every model of ``metafile.yml`` and ``published_peers.yml``, by name, in file order."""
    return dict(_read())


def published(name: str) -> Published:
    """The published figures of one model (a metafile or peer name); a ValueError listing the names otherwise."""
    entries = _read()
    if name not in entries:
        raise ValueError(f'no published figures for {name!r}; known: {", ".join(entries)}')
    return entries[name]


def imagenet_top1() -> Dict[str, float]:
    """ImageNet-1k top-1 (%) by MSVMamba arch (``'tiny'``) or peer name (``'swin-t'``)."""
    return {entry.arch or entry.name: entry.metrics['top1'].value for entry in _read().values()
            if 'top1' in entry.metrics}


def published_gflops(scope: str, arch: str) -> Optional[Tuple[float, Tuple[int, int], str]]:
    """``(GFLOPs, (H, W) input, source)`` published for the ``scope`` task's model (``'mmpretrain'``: the ImageNet
    classifier, ``'mmdet'``: Mask R-CNN, ``'mmseg'``: UperNet) with an MSVMamba ``arch`` backbone, or None."""
    for entry in _read().values():
        if entry.scope == scope and entry.arch == arch and entry.gflops is not None:
            return entry.gflops.value, entry.flops_input, entry.gflops.source
    return None


def official_speeds() -> Dict[Tuple[str, str], Speed]:
    """(MSVMamba arch, mode) -> the official code's :class:`Speed` (the anchors of ``tools/benchmark.py``)."""
    return {(entry.arch, mode): speed for entry in _read().values() for mode, speed in entry.speed.items()}
