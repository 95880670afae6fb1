"""The MSVMamba ImageNet classifier in plain PyTorch: (B, 3, H, W) float images -> (B, num_classes) logits.

The one plain classifier of the package (analysis counts and times it where mmpretrain is missing, deploy exports
it). Same layers, parameters, FLOPs and state-dict keys as mmpretrain's ``ImageClassifier`` built by
``configs/msvmamba_*_in1k.py`` (``backbone.*``; ``neck``: global average pooling, no weights; ``head.fc.*``), so
one checkpoint loads into both, and an official classification file does too after
:func:`mmmsvmamba.models.checkpoint.official_to_mmpretrain` (``load_weights`` converts it on the way).
"""
import torch
import torch.nn as nn

from .msvmamba import MSVMamba


class _GlobalAveragePooling(nn.Module):
    """(B, C, H, W) -> (B, C), mmpretrain's GlobalAveragePooling neck (its pooling module is ``gap``)."""

    def __init__(self):
        super().__init__()
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gap(x).flatten(1)


class _LinearHead(nn.Module):
    """(B, C) -> (B, num_classes), mmpretrain's LinearClsHead (its layer is ``fc``)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class ImageNetClassifier(nn.Module):
    """``MSVMamba(arch, out_indices=(3,))`` -> global average pooling -> linear head; ``outnorm3`` is the official
    final norm (``classifier.norm``)."""

    def __init__(self, arch, num_classes: int = 1000):
        super().__init__()
        self.backbone = MSVMamba(arch, out_indices=(3, ))
        self.neck = _GlobalAveragePooling()
        self.head = _LinearHead(self.backbone.dims[3], num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.backbone(images)[-1]))
