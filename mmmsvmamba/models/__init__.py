"""MSVMamba models: the backbone, its MS2D mixer and layers, and official-checkpoint loading."""
from .checkpoint import load_checkpoint_file, load_pretrained, official_to_mmpretrain
from .msvmamba import MSVMamba

__all__ = ['MSVMamba', 'load_checkpoint_file', 'load_pretrained', 'official_to_mmpretrain']
