"""mmengine reads local checkpoint files through :func:`mmmsvmamba.models.checkpoint.load_checkpoint_file`.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine 0.10.7 calls it without the argument,
and its training checkpoints (``epoch_N.pth``, ``iter_N.pth``, and the official MSVMamba detection/segmentation
files, which mmengine wrote too) pickle more than tensors: the message hub's ``HistoryBuffer`` objects holding numpy
arrays and numpy scalars. So ``--resume`` and ``load_from`` would fail with "Weights only load failed"; turning the
check off (``weights_only=False``) would let a checkpoint run arbitrary code.

Importing :mod:`mmmsvmamba.engine` (every config of this package does, through ``custom_imports``) registers
:func:`load_from_local` as mmengine's loader for paths without a URL scheme. It reads with the package's one
restricted unpickler, ``foreign='refuse'``: tensors, numpy data and ``HistoryBuffer`` load, a file that pickles
anything else (a function, a class) is refused. Every mmengine checkpoint read then works unchanged: the runner's
``load_from`` and ``--resume``, ``tools/test.py``, and ``init_detector`` / ``init_model`` / the inferencers given a
checkpoint path.
"""
from mmengine.runner.checkpoint import CheckpointLoader

from ..models.checkpoint import load_checkpoint_file


def load_from_local(filename: str, map_location=None):
    """mmengine's loader for local checkpoint files, reading through the package's restricted unpickler.

    Keeps mmengine's function name: ``CheckpointLoader`` logs the backend as the name without ``load_from_``.
    """
    return load_checkpoint_file(filename, foreign='refuse', map_location=map_location)


def register_checkpoint_loader():
    """Make :func:`load_from_local` mmengine's loader for paths without a URL scheme (idempotent)."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
