"""Training-loop pieces for mmengine: safe resume under torch >= 2.6, exact resume, evaluation before training.

Imported by the configs of this package through ``custom_imports`` (it needs mmengine, which the backbone alone
does not).
"""
from .checkpoint_globals import checkpoint_globals, mmengine_checkpoint_globals
from .hooks import RNGStateHook, ValidateBeforeTrainHook, get_rng_state, set_rng_state
from .runner import MSVMambaRunner

__all__ = [
    'MSVMambaRunner', 'RNGStateHook', 'ValidateBeforeTrainHook', 'checkpoint_globals', 'get_rng_state',
    'mmengine_checkpoint_globals', 'set_rng_state'
]
