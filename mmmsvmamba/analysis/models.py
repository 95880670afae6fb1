"""The models the measurement tools count and time: our ImageNet classifiers, the peers they are compared with,
the models of det/seg/cls configs, and the input size each task is measured at.

Everything here needs torch only; mmpretrain, torchvision and the config libraries are imported when asked for.
"""
import importlib.util
from typing import Optional, Tuple

import torch
import torch.nn as nn

from ..models import ImageNetClassifier, MSVMamba

# Input (H, W) per task: FLOPs and inference at the official FLOP-count size, training at the largest training
# input. Detection: the official (3, 1280, 800) tensor; training resizes to (1333, 800) keeping the ratio.
# Segmentation: (512, 2048), the largest Resize (2048, 512) output; training takes 512x512 crops.
TASK_SHAPES = {
    'mmpretrain': dict(infer=(224, 224), train=(224, 224)),
    'mmdet': dict(infer=(1280, 800), train=(800, 1333)),
    'mmseg': dict(infer=(512, 2048), train=(512, 512)),
}

# Peers as their mmpretrain ImageNet configs build them (configs/_base_/models/{convnext/convnext-tiny,
# swin_transformer/tiny_224,resnet50}.py), and the torchvision model of the same architecture.
PEERS = {
    'convnext-t': dict(
        mmpretrain=dict(type='ImageClassifier', backbone=dict(type='ConvNeXt', arch='tiny', drop_path_rate=0.1),
                        head=dict(type='LinearClsHead', num_classes=1000, in_channels=768)),
        torchvision='convnext_tiny'),
    'swin-t': dict(
        mmpretrain=dict(type='ImageClassifier',
                        backbone=dict(type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.2),
                        neck=dict(type='GlobalAveragePooling'),
                        head=dict(type='LinearClsHead', num_classes=1000, in_channels=768)),
        torchvision='swin_t'),
    'resnet50': dict(
        mmpretrain=dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=50, out_indices=(3, )),
                        neck=dict(type='GlobalAveragePooling'),
                        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048)),
        torchvision='resnet50'),
}
PEER_SOURCES = ('auto', 'mmpretrain', 'torchvision')


def canonical_arch(arch: str) -> str:
    """'t' -> 'tiny': the long name of an arch_zoo entry; a ValueError listing the valid names otherwise."""
    MSVMamba.parse_arch(arch)
    entry = MSVMamba.arch_zoo[arch.lower()]
    return max((name for name, value in MSVMamba.arch_zoo.items() if value is entry), key=len)


def canonical_name(name: str) -> str:
    """A peer name, or the long name of an MSVMamba arch; a ValueError listing both otherwise."""
    if name in PEERS:
        return name
    try:
        return canonical_arch(name)
    except ValueError:
        archs = ', '.join(sorted(MSVMamba.arch_zoo))
        raise ValueError(f'unknown model {name!r}: use an MSVMamba arch ({archs}) or a peer ({", ".join(PEERS)})') \
            from None


def _mmpretrain_build(cfg: dict) -> nn.Module:
    from mmpretrain.registry import MODELS

    from ..registry import REGISTERED
    if 'mmpretrain' not in REGISTERED:
        raise RuntimeError('mmpretrain is installed but MSVMamba is not registered in it (see mmmsvmamba.registry)')
    return MODELS.build(dict(cfg, _scope_='mmpretrain'))  # _scope_: whatever default scope an earlier config set


def build_classifier(arch: str, num_classes: int = 1000, use_mmpretrain: Optional[bool] = None) -> nn.Module:
    """The ImageNet classifier of ``arch``: mmpretrain's ImageClassifier when installed, else
    :class:`mmmsvmamba.models.ImageNetClassifier` (the same layers and state-dict keys).

    Both take (B, 3, H, W) and return (B, num_classes) logits when called as ``model(images)``.
    """
    arch = canonical_arch(arch)
    if use_mmpretrain is None:
        use_mmpretrain = importlib.util.find_spec('mmpretrain') is not None
    if not use_mmpretrain:
        return ImageNetClassifier(arch, num_classes)
    return _mmpretrain_build(dict(
        type='ImageClassifier',
        backbone=dict(type='MSVMamba', arch=arch, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=MSVMamba.parse_arch(arch)['dims'][3])))


def peer_source(choice: str = 'auto') -> str:
    """The library the peers come from: ``choice``, or for 'auto' mmpretrain, else torchvision."""
    if choice not in PEER_SOURCES:
        raise ValueError(f'unknown peer source {choice!r}; choose one of {PEER_SOURCES}')
    available = {lib: importlib.util.find_spec(lib) is not None for lib in PEER_SOURCES[1:]}
    if choice == 'auto':
        for lib in PEER_SOURCES[1:]:
            if available[lib]:
                return lib
        raise ValueError('peers need mmpretrain or torchvision; install one, or measure no peers')
    if not available[choice]:
        raise ValueError(f'peer source {choice}: {choice} is not installed')
    return choice


def build_peer_classifier(name: str, source: str) -> nn.Module:
    """A peer's ImageNet classifier from ``source`` ('mmpretrain' or 'torchvision'): images -> logits."""
    if source == 'mmpretrain':
        return _mmpretrain_build(PEERS[name]['mmpretrain'])
    import torchvision
    return getattr(torchvision.models, PEERS[name]['torchvision'])()


def build_peer_backbone(name: str) -> nn.Module:
    """The backbone of a peer's mmpretrain classifier (images -> feature maps)."""
    return _mmpretrain_build(PEERS[name]['mmpretrain']['backbone'])


def build_named_model(name: str, source: str = 'auto') -> Tuple[nn.Module, str]:
    """(model, source) for an MSVMamba arch or a peer name; the model maps (B, 3, H, W) images to logits."""
    name = canonical_name(name)
    if name in PEERS:
        source = peer_source(source)
        return build_peer_classifier(name, source), source
    model = build_classifier(name)
    return model, 'mmpretrain' if type(model).__name__ == 'ImageClassifier' else 'torch'
