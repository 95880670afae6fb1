"""Training-loop pieces for mmengine: checkpoint reading under torch >= 2.6, exact resume, evaluation before
training.

Imported by the configs of this package through ``custom_imports`` (it needs mmengine, which the backbone alone
does not).
"""
from .checkpoint_loader import load_from_local, register_checkpoint_loader
from .hooks import RNGStateHook, ValidateBeforeTrainHook, get_rng_state, set_rng_state

register_checkpoint_loader()

__all__ = [
    'RNGStateHook', 'ValidateBeforeTrainHook', 'get_rng_state', 'load_from_local', 'register_checkpoint_loader',
    'set_rng_state'
]
