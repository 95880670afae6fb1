"""Read mmengine's own checkpoints with torch's weights-only unpickler.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine 0.10.7 calls it without the argument,
and its training checkpoints (``epoch_N.pth``, ``iter_N.pth``, and the official MSVMamba detection/segmentation
files, which mmengine wrote too) pickle more than tensors: the message hub's ``HistoryBuffer`` objects holding
numpy arrays and numpy scalars. So ``--resume`` and ``load_from`` fail with "Weights only load failed".

Turning the check off (``weights_only=False``) would let a checkpoint run arbitrary code. Instead we allow-list
the few *data* types mmengine writes, returned by :func:`checkpoint_globals`, and only while a checkpoint
is being read (:func:`mmengine_checkpoint_globals`). Importing :mod:`mmmsvmamba.engine` (every config of this
package does, through ``custom_imports``) makes :func:`load_from_local`, which reads inside that context,
mmengine's loader for local files. Every mmengine checkpoint read then works unchanged: the runner's
``load_from`` and ``--resume``, ``tools/test.py``, and ``init_detector`` / ``init_model`` / the inferencers
given a checkpoint path.

Everything else a file may pickle (classes, functions, ``os.system``...) is still refused by torch.
"""
import contextlib
import pickle

import numpy as np
import torch
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.runner.checkpoint import load_from_local as mmengine_load_from_local


def _numpy_globals() -> list:
    """The numpy names that pickled arrays, dtypes and scalars refer to.

    numpy 1.x writes ``numpy.core.multiarray.*`` and numpy 2.x ``numpy._core.multiarray.*``; a checkpoint may come
    from either, so both spellings are allowed (the tuple form maps a pickled name onto the object we have).
    """
    multiarray = np.core.multiarray if hasattr(np, 'core') else np._core.multiarray
    names = []
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        names += [(multiarray._reconstruct, f'{module}._reconstruct'), (multiarray.scalar, f'{module}.scalar')]
    names += [np.ndarray, np.dtype]
    # numpy >= 1.25 pickles a dtype through its class (numpy.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        names += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return names


def _history_buffer_method(owner, name: str):
    """Stand-in for ``getattr`` in mmengine checkpoints, restricted to the one use they make of it.

    A pickled ``HistoryBuffer`` names its statistics methods as ``getattr(HistoryBuffer, 'mean')`` and so on.
    Allowing the real ``getattr`` would let a file reach any attribute of any allowed object; this returns
    public methods of ``HistoryBuffer`` and refuses everything else.
    """
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and not name.startswith('_') and callable(HistoryBuffer.__dict__.get(name)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'refusing getattr({owner!r}, {name!r}) in a checkpoint: only HistoryBuffer '
                                 'statistics methods are expected there')


def _mmengine_globals() -> list:
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (_history_buffer_method, 'builtins.getattr')]


def checkpoint_globals() -> list:
    """Everything :func:`mmengine_checkpoint_globals` allow-lists: numpy's array, dtype and scalar
    reconstruction, ``HistoryBuffer``, and a ``getattr`` limited to ``HistoryBuffer`` methods."""
    return _numpy_globals() + _mmengine_globals()


@contextlib.contextmanager
def mmengine_checkpoint_globals():
    """Within this context ``torch.load(weights_only=True)`` also accepts mmengine's checkpoint contents."""
    with torch.serialization.safe_globals(checkpoint_globals()):
        yield


def load_from_local(filename: str, map_location=None):
    """mmengine's loader for local checkpoint files, reading inside :func:`mmengine_checkpoint_globals`.

    Keeps mmengine's function name: ``CheckpointLoader`` logs the backend as the name without ``load_from_``.
    """
    with mmengine_checkpoint_globals():
        return mmengine_load_from_local(filename, map_location)


def register_checkpoint_loader():
    """Make :func:`load_from_local` mmengine's loader for paths without a URL scheme (idempotent)."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
