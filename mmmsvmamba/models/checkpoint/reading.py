"""Reading any checkpoint file safely: one restricted unpickler for official, mmengine-written and our files.

Checkpoints pickle more than tensors: the official classification files (``{'model': ..., 'model_ema': ...,
'config': <yacs CfgNode>, ...}``) a yacs ``CfgNode`` and numpy scalars; mmengine-written files (our training
checkpoints and the official detection/segmentation ones) the message hub, ``HistoryBuffer`` objects holding numpy
arrays. ``torch.load(weights_only=True)`` refuses all of these, and its allow-list cannot take a stand-in for a dict
subclass such as CfgNode. So every file is unpickled by one restricted ``pickle.Unpickler`` whose ``find_class``
(the only way a pickle reaches code) resolves a name to

* what torch's weights-only loader trusts (:func:`torch_weights_only_names`), or what :func:`data_global` returns:
  numpy's array, dtype and scalar reconstruction, mmengine's ``HistoryBuffer``, and a ``getattr`` that returns only
  ``HistoryBuffer``'s public statistics methods;
* nothing for the modules torch blocks (sys, os, posix, nt): the file is refused;
* anything else depending on ``foreign``: ``'data'`` reads it as a :class:`ForeignObject`, an inert container (the
  real class is never imported and none of its code runs); ``'refuse'`` refuses the file.

Reading never imports a module that the file names. :mod:`mmmsvmamba.engine` makes this reader (``foreign='refuse'``)
mmengine's loader for local files, so runner, ``tools/test.py`` and the mmdet/mmseg/mmpretrain API functions read
training checkpoints through it too. :func:`save_weights_only` writes the files that a plain
``torch.load(weights_only=True)`` reads.
"""
import _compat_pickle
import functools
import importlib
import logging
import os
import pickle
import types
from urllib.parse import urlparse

import torch

FOREIGN_POLICIES = ('data', 'refuse')
HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'
# torch's private names behind its weights-only loader that the reader takes the trusted names from
TORCH_PRIVATE_NAMES = ('_get_allowed_globals', '_blocklisted_modules')


class CheckpointError(RuntimeError):
    """A checkpoint cannot serve: unreadable, not a checkpoint, or not fitting the model it was given to."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint asks for code (a function or class beyond plain data) while it is unpickled; nothing ran."""


class ForeignObject(dict):
    """Stand-in for classes pickled in a checkpoint that we neither need nor import (e.g. yacs.config.CfgNode).

    It accepts any constructor arguments, items and state and keeps them as data; it has no behaviour.
    """

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.args, self.items_appended = args, []

    def __setstate__(self, state):
        self.state = state

    def append(self, item):
        self.items_appended.append(item)

    def extend(self, items):
        self.items_appended.extend(items)



@functools.lru_cache(maxsize=None)
def _numpy_globals() -> dict:
    """The numpy names that pickled arrays, dtypes and scalars refer to.

    numpy 1.x writes ``numpy.core.multiarray.*`` and numpy 2.x ``numpy._core.multiarray.*``; a checkpoint may come
    from either, so both spellings resolve to the objects of the numpy we have.
    """
    try:
        import numpy as np
    except ImportError:
        return {}
    multiarray = np.core.multiarray if hasattr(np, 'core') else np._core.multiarray
    names = {}
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        names.update({f'{module}._reconstruct': multiarray._reconstruct, f'{module}.scalar': multiarray.scalar})
    names.update({'numpy.ndarray': np.ndarray, 'numpy.dtype': np.dtype})
    # numpy >= 1.25 pickles a dtype through its class (numpy.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        names.update({f'numpy.dtypes.{name}': getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')})
    return names


def _history_buffer():
    """mmengine's HistoryBuffer class, or None without mmengine (the module is ours to name, not the file's)."""
    try:
        module_name, class_name = HISTORY_BUFFER.rsplit('.', 1)
        return getattr(importlib.import_module(module_name), class_name)
    except ImportError:
        return None


def _statistics_method(owner, name: str):
    """Stand-in for ``getattr`` in mmengine checkpoints, restricted to the one use they make of it.

    A pickled ``HistoryBuffer`` names its statistics methods as ``getattr(HistoryBuffer, 'mean')`` and so on.
    The real ``getattr`` would let a file reach any attribute of any allowed object; this returns public methods of
    ``HistoryBuffer`` (and, where HistoryBuffer was read as a :class:`ForeignObject` for want of mmengine, that
    inert class again) and refuses everything else.
    """
    if owner is ForeignObject:
        return ForeignObject
    history_buffer = _history_buffer()
    if (owner is history_buffer and isinstance(name, str) and not name.startswith('_')
            and callable(history_buffer.__dict__.get(name))):
        return getattr(history_buffer, name)
    raise UnsafeCheckpointError(f'refusing getattr({owner!r}, {name!r}): only HistoryBuffer statistics methods '
                                'are expected in a checkpoint')


def data_global(full_name: str):
    """The object a pickled name resolves to beyond torch's weights-only set, or None: numpy's array, dtype and
    scalar reconstruction (both numpy spellings), mmengine's ``HistoryBuffer`` and the restricted ``getattr``
    (:func:`_statistics_method`). mmengine is imported only when a file names its HistoryBuffer (None without it)."""
    if full_name == HISTORY_BUFFER:
        return _history_buffer()
    if full_name == 'builtins.getattr':
        return _statistics_method
    return _numpy_globals().get(full_name)


def torch_weights_only_names():
    """(trusted name -> object, blocked top-level modules) of torch's weights-only unpickler.

    Private names of torch (:data:`TORCH_PRIVATE_NAMES`): without them a :class:`CheckpointError` names the torch
    version, and tests/models/test_checkpoint.py fails the same way when a torch release moves them.
    """
    from torch import _weights_only_unpickler as weights_only
    missing = [name for name in TORCH_PRIVATE_NAMES if not hasattr(weights_only, name)]
    if missing:
        raise CheckpointError(f'torch {torch.__version__} has no torch._weights_only_unpickler.{", ".join(missing)}, '
                              "which mmmsvmamba's checkpoint reader takes torch's trusted names from; use a torch "
                              'that has them (2.4 to 2.14 do) or update mmmsvmamba/models/checkpoint/reading.py')
    return weights_only._get_allowed_globals(), set(weights_only._blocklisted_modules)


def _restricted_pickle_module(foreign: str, seen: set):
    """A pickle-module stand-in for torch.load whose Unpickler resolves globals as the module docstring says."""
    trusted, blocked = torch_weights_only_names()

    class RestrictedUnpickler(pickle.Unpickler):

        def find_class(self, module, name):
            # torch.save writes pickle protocol 2, which spells Python 3 names the Python 2 way (__builtin__)
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            full_name = f'{module}.{name}'
            if full_name in trusted:
                return trusted[full_name]
            data = data_global(full_name)
            if data is not None:
                return data
            if module.split('.')[0] in blocked:
                raise UnsafeCheckpointError(f'refusing {full_name}: the file asks for a function of a blocked '
                                            f'module ({sorted(blocked)}); it is not a plain checkpoint')
            if foreign == 'refuse':
                raise UnsafeCheckpointError(f"refusing {full_name}: only tensors, numpy data and mmengine's "
                                            'HistoryBuffer are expected in this checkpoint')
            seen.add(full_name)
            return ForeignObject

    return types.SimpleNamespace(__name__='mmmsvmamba_restricted_pickle', Unpickler=RestrictedUnpickler,
                                 load=lambda f, **kw: RestrictedUnpickler(f, **kw).load())


def get_logger() -> logging.Logger:
    try:
        from mmengine.logging import MMLogger
        return MMLogger.get_current_instance()
    except ImportError:
        return logging.getLogger('mmmsvmamba')


def _local_path(filename: str) -> str:
    if urlparse(filename).scheme in ('http', 'https'):
        cache_dir = os.path.join(torch.hub.get_dir(), 'checkpoints')
        path = os.path.join(cache_dir, os.path.basename(urlparse(filename).path))
        if not os.path.isfile(path):
            os.makedirs(cache_dir, exist_ok=True)
            get_logger().info(f'downloading {filename} to {path}')
            torch.hub.download_url_to_file(filename, path)
        return path
    path = os.path.expanduser(filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {filename!r}. Check the path, or download the official '
                                'weights listed in docs/model_zoo.md')
    return path


def load_checkpoint_file(filename: str, foreign: str = 'data', map_location='cpu') -> dict:
    """Unpickle a checkpoint (path or http(s) URL) safely (module docstring).

    Args:
        foreign: what a pickled class or function beyond plain data becomes: ``'data'``, an inert
            :class:`ForeignObject` (official classification files pickle a yacs CfgNode); ``'refuse'``, an
            :class:`UnsafeCheckpointError` (mmengine's loader, which has no use for stand-ins).
        map_location: as for ``torch.load``.
    """
    if foreign not in FOREIGN_POLICIES:
        raise ValueError(f'foreign must be one of {FOREIGN_POLICIES}, got {foreign!r}')
    path = _local_path(filename)
    seen = set()
    try:
        # weights_only=False only because torch forbids it together with a pickle_module; the restricted
        # Unpickler above is the gate.
        ckpt = torch.load(path, map_location=map_location, weights_only=False,
                          pickle_module=_restricted_pickle_module(foreign, seen))
    except UnsafeCheckpointError as err:
        raise UnsafeCheckpointError(f'cannot read checkpoint {path!r}: {err}') from err
    except Exception as err:
        raise CheckpointError(f'cannot read checkpoint {path!r}: {err}') from err
    if seen:
        get_logger().info(f'{path}: read pickled {sorted(seen)} as plain data (ForeignObject)')
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'checkpoint {path!r} holds a {type(ckpt).__name__}, expected a dict')
    return ckpt


def save_weights_only(ckpt: dict, path: str) -> None:
    """Write ``ckpt`` and check that a plain ``torch.load(weights_only=True)`` reads it back, nothing else needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(ckpt, path)
    try:
        torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:
        raise CheckpointError(f'{path} holds more than tensors and plain data ({err})') from err
