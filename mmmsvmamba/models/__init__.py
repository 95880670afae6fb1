"""MSVMamba models: the backbone, its MS2D mixer and layers, and checkpoints (reading, loading, converting)."""
from .checkpoint import (CheckpointError, convert_official, load_checkpoint_file, load_pretrained,
                         official_to_mmpretrain)
from .msvmamba import MSVMamba

__all__ = [
    'CheckpointError', 'MSVMamba', 'convert_official', 'load_checkpoint_file', 'load_pretrained',
    'official_to_mmpretrain'
]
