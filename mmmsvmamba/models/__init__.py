"""MSVMamba models: the backbone, its MS2D mixer and layers, the plain ImageNet classifier, and checkpoints
(reading, loading, converting)."""
from .checkpoint import (CheckpointError, convert_official, load_checkpoint_file, load_pretrained, load_weights,
                         official_to_mmpretrain)
from .classifier import ImageNetClassifier
from .msvmamba import MSVMamba

__all__ = [
    'CheckpointError', 'ImageNetClassifier', 'MSVMamba', 'convert_official', 'load_checkpoint_file',
    'load_pretrained', 'load_weights', 'official_to_mmpretrain'
]
