"""Checkpoints: reading any of them safely, loading official weights loudly, converting official files.

**Reading** (:func:`load_checkpoint_file`). Checkpoints pickle more than tensors: the official classification files
(``{'model': ..., 'model_ema': ..., 'config': <yacs CfgNode>, ...}``, spec 7.3) a yacs ``CfgNode`` and numpy
scalars; mmengine-written files (our training checkpoints and the official detection/segmentation ones) the message
hub, ``HistoryBuffer`` objects holding numpy arrays. ``torch.load(weights_only=True)`` refuses all of these, and its
allow-list cannot take a stand-in for a dict subclass such as CfgNode. So every file is unpickled by one restricted
``pickle.Unpickler`` whose ``find_class`` (the only way a pickle reaches code) resolves a name to

* what torch's weights-only loader trusts, or one of :func:`data_globals`: numpy's array, dtype and scalar
  reconstruction, mmengine's ``HistoryBuffer``, and a ``getattr`` that returns only ``HistoryBuffer``'s public
  statistics methods;
* nothing for the modules torch blocks (sys, os, posix, nt): the file is refused;
* anything else depending on ``foreign``: ``'data'`` reads it as a :class:`ForeignObject`, an inert container (the
  real class is never imported and none of its code runs); ``'refuse'`` refuses the file.

Reading never imports a module that the file names. :mod:`mmmsvmamba.engine` makes this reader (``foreign='refuse'``)
mmengine's loader for local files, so runner, ``tools/test.py`` and the mmdet/mmseg/mmpretrain API functions read
training checkpoints through it too.

**Loading** (:func:`load_pretrained`, used by ``init_cfg``): :func:`extract_state_dict` picks ``state_dict`` /
``model`` / ``model_ema`` (or a bare state dict), strips ``module.`` and keeps only ``backbone.*`` when present,
renames legacy VMamba keys and reshapes 1x1-conv weights to the 2-D Linear layout; then everything loads or a
:class:`CheckpointError` names every missing, unexpected and mis-shaped key (:func:`check_keys`). Never random
weights.

**Converting** (:func:`convert_official`, the whole of ``tools/convert_checkpoint.py``): an official classification
file becomes an mmpretrain ``ImageClassifier`` state dict (:func:`official_to_mmpretrain`); an official
detection/segmentation file keeps its keys (they already are our configs') without the optimizer and message hub.
Both are written by :func:`save_weights_only` for a plain ``torch.load(weights_only=True)``.

A file that cannot serve raises :class:`CheckpointError` (or its :class:`UnsafeCheckpointError`); a missing file
``FileNotFoundError``.
"""
import _compat_pickle
import functools
import importlib
import logging
import os
import pickle
import re
import types
from collections import OrderedDict
from typing import Mapping, Optional
from urllib.parse import urlparse

import torch

STATE_DICT_KEYS = ('state_dict', 'model', 'model_ema')
MODULE_PREFIX = 'module.'  # what DataParallel / DistributedDataParallel put before every key
BACKBONE_PREFIX = 'backbone.'
# keys of an official classification model that a backbone does not have (the classifier of VSSM)
CLASSIFIER_PREFIX = 'classifier.'
# old VMamba names that the official VSSM._load_from_state_dict renames silently (spec 7.3)
LEGACY_RENAMES = ((r'^patch_embed\.proj\.', 'patch_embed.0.'), (r'^patch_embed\.norm\.', 'patch_embed.2.'),
                  (r'\.ln_1\.', '.norm.'), (r'\.self_attention\.', '.op.'), (r'^norm\.', 'classifier.norm.'),
                  (r'^head\.', 'classifier.head.'))
FOREIGN_POLICIES = ('data', 'refuse')
HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'
# what convert_official makes of each kind of official file
TASKS = ('classification', 'detseg')


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


# ----------------------------------------------------------------------------------------------------------------
# Reading

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


def data_globals() -> dict:
    """Pickled name -> object, for everything the reader resolves beyond torch's weights-only set (mmengine's two
    names only where mmengine is installed)."""
    names = dict(_numpy_globals())
    history_buffer = _history_buffer()
    if history_buffer is not None:
        names.update({HISTORY_BUFFER: history_buffer, 'builtins.getattr': _statistics_method})
    return names


def _data_global(full_name: str):
    """The object of :func:`data_globals` for a pickled name, or None; mmengine is imported only when a file names
    its HistoryBuffer."""
    if full_name == HISTORY_BUFFER:
        return _history_buffer()
    if full_name == 'builtins.getattr':
        return _statistics_method
    return _numpy_globals().get(full_name)


def _restricted_pickle_module(foreign: str, seen: set):
    """A pickle-module stand-in for torch.load whose Unpickler resolves globals as the module docstring says."""
    from torch import _weights_only_unpickler as weights_only
    trusted = weights_only._get_allowed_globals()
    blocked = set(weights_only._blocklisted_modules)

    class RestrictedUnpickler(pickle.Unpickler):

        def find_class(self, module, name):
            # torch.save writes pickle protocol 2, which spells Python 3 names the Python 2 way (__builtin__)
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            full_name = f'{module}.{name}'
            if full_name in trusted:
                return trusted[full_name]
            data = _data_global(full_name)
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


# ----------------------------------------------------------------------------------------------------------------
# State dicts and key reports

def strip_prefix(state_dict: Mapping, prefix: str = MODULE_PREFIX) -> OrderedDict:
    """``state_dict`` with ``prefix`` removed from the keys that start with it (by default DDP's ``module.``)."""
    return OrderedDict((k[len(prefix):] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def check_keys(state_dict: Mapping, own: Mapping, source: str, target: str, outcome: str = 'nothing was loaded',
               hint: str = '') -> None:
    """Raise :class:`CheckpointError` naming every key of ``state_dict`` missing from, unexpected in or of another
    shape than ``own`` (a model's state dict); the one key report of this package."""
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}' for k, v in state_dict.items()
                  if k in own and v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointError(f'{source} does not fit {target}; {outcome}.\n' +
                              _key_lines('missing', missing) + _key_lines('unexpected', unexpected) +
                              _key_lines('shape mismatch', mismatched) + hint)


def _key_lines(title: str, keys: list, limit: int = 10) -> str:
    if not keys:
        return ''
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return f'  {title} ({len(keys)}): {keys[:limit]}{more}\n'


def _tensors(state_dict, source: str) -> OrderedDict:
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f'{source}: state dict entries that are not tensors: {bad[:5]}')
    return strip_prefix(state_dict)


def _state_dict_entry(ckpt: dict, checkpoint_key: Optional[str], source: str):
    if checkpoint_key is not None:
        if checkpoint_key not in ckpt:
            raise CheckpointError(f'{source} has no entry {checkpoint_key!r}; it has {sorted(ckpt)}')
        return ckpt[checkpoint_key]
    if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    found = [k for k in STATE_DICT_KEYS if isinstance(ckpt.get(k), dict)]
    if not found:
        raise CheckpointError(f'{source} has no state dict: expected tensors or one of {STATE_DICT_KEYS}, '
                              f'found {sorted(ckpt)}')
    return ckpt[found[0]]


def extract_state_dict(ckpt: dict, checkpoint_key: Optional[str] = None, source: str = 'checkpoint') -> OrderedDict:
    """The backbone state dict inside a checkpoint dict, in official key names (see module docstring)."""
    state_dict = _tensors(_state_dict_entry(ckpt, checkpoint_key, source), source)
    if any(k.startswith(BACKBONE_PREFIX) for k in state_dict):
        state_dict = strip_prefix({k: v for k, v in state_dict.items() if k.startswith(BACKBONE_PREFIX)},
                                  BACKBONE_PREFIX)
    return OrderedDict((_rename_legacy(k), v) for k, v in state_dict.items())


def _rename_legacy(key: str) -> str:
    for pattern, replacement in LEGACY_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def _fit_shape(value: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Official v3 in_proj/out_proj may be stored as 1x1 convs (out, in, 1, 1); ours are Linear (out, in)."""
    def without_unit_dims(size):
        return [d for d in size if d != 1]

    if value.shape != shape and without_unit_dims(value.shape) == without_unit_dims(shape):
        return value.reshape(shape)
    return value


def load_pretrained(model: torch.nn.Module, filename: str, checkpoint_key: Optional[str] = None) -> dict:
    """Load an official (or mmmsvmamba) checkpoint into an MSVMamba backbone, all-or-nothing.

    ``classifier.*`` keys of a classification checkpoint are expected extras; ``outnorm{i}`` absent from a
    classification checkpoint keep their init (as in the official wrapper). Anything else missing, unexpected or
    of another shape raises :class:`CheckpointError` naming the keys, and the model is left untouched.

    Returns:
        the report: dict with ``loaded``, ``missing_outnorm``, ``ignored`` key lists.
    """
    state_dict = extract_state_dict(load_checkpoint_file(filename), checkpoint_key, source=filename)
    own = model.state_dict()
    state_dict = OrderedDict((k, _fit_shape(v, own[k].shape) if k in own else v) for k, v in state_dict.items())
    ignored = [k for k in state_dict if k.startswith(CLASSIFIER_PREFIX)]
    missing_outnorm = [k for k in own if k.startswith('outnorm') and k not in state_dict]
    loadable = OrderedDict((k, v) for k, v in state_dict.items() if k not in ignored)
    check_keys(loadable, {k: v for k, v in own.items() if k not in missing_outnorm}, f'checkpoint {filename!r}',
               f'this MSVMamba (arch {getattr(model, "arch", "?")})',
               hint='Is the checkpoint for another arch (nano/micro/tiny_v1 are v1, tiny/small/base v3)?')
    model.load_state_dict(loadable, strict=False)
    get_logger().info(f'loaded {len(loadable)} backbone tensors from {filename}; ignored {len(ignored)} classifier '
                      f'keys; kept init for {missing_outnorm or "no"} output norms')
    return dict(loaded=list(loadable), missing_outnorm=missing_outnorm, ignored=ignored)


# ----------------------------------------------------------------------------------------------------------------
# Converting official files

def official_to_mmpretrain(ckpt: dict, num_stages: int = 4, checkpoint_key: Optional[str] = None) -> OrderedDict:
    """Official classification keys (a checkpoint dict or its state dict) -> mmpretrain ``ImageClassifier`` keys.

    The official final norm ``classifier.norm`` is our backbone's last output norm; ``classifier.head`` is the
    ``LinearClsHead``'s ``fc``; everything else goes under ``backbone.``.
    """
    state_dict = extract_state_dict(ckpt, checkpoint_key)
    last_norm = f'{BACKBONE_PREFIX}outnorm{num_stages - 1}.'
    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('classifier.norm.'):
            converted[last_norm + key[len('classifier.norm.'):]] = value
        elif key.startswith('classifier.head.'):
            converted['head.fc.' + key[len('classifier.head.'):]] = value
        else:
            converted[BACKBONE_PREFIX + key] = value
    return converted


def official_task(ckpt: dict) -> str:
    """Which of :data:`TASKS` an official checkpoint dict is: ``'detseg'`` for an mmengine-written file whose
    ``state_dict`` holds ``backbone.*`` and other weights, ``'classification'`` for one with the official classifier
    (``classifier.*`` or legacy ``head.*`` keys); a :class:`CheckpointError` otherwise."""
    entry = ckpt.get('state_dict')
    if isinstance(entry, dict):
        keys = list(strip_prefix(entry))
        if any(k.startswith(BACKBONE_PREFIX) for k in keys) and not all(k.startswith(BACKBONE_PREFIX) for k in keys):
            return 'detseg'
    try:
        keys = list(extract_state_dict(ckpt))
    except CheckpointError:
        keys = []
    if any(k.startswith('classifier.head.') for k in keys):
        return 'classification'
    raise CheckpointError(f'not an official MSVMamba checkpoint: neither an mmengine detection/segmentation file '
                          f'(state_dict with backbone.* and head weights) nor a classification file (classifier.head.* '
                          f'weights); entries: {sorted(ckpt)}')


def convert_official(ckpt: dict, checkpoint_key: Optional[str] = None) -> dict:
    """An official checkpoint dict -> ``{'meta': ..., 'state_dict': ...}`` of tensors and plain data only.

    * classification (``{'model': ..., 'model_ema': ..., 'config': ...}``): the keys of an mmpretrain
      ``ImageClassifier`` (:func:`official_to_mmpretrain`) from ``model`` (or ``checkpoint_key``, e.g. ``model_ema``);
    * detection/segmentation (mmengine-written, ``state_dict`` already in our configs' keys: ``backbone.*`` the
      official names incl. ``backbone.outnorm{i}``, neck and heads mmdet 3.3's / mmseg 1.2's): ``module.`` stripped,
      ``dataset_meta`` kept, optimizer, schedulers and message hub dropped (about 2/3 of the file).

    ``meta['task']`` says which (:func:`official_task`).
    """
    task = official_task(ckpt)
    if task == 'classification':
        return dict(meta=dict(task=task, entry=checkpoint_key or _first_entry(ckpt)),
                    state_dict=official_to_mmpretrain(ckpt, checkpoint_key=checkpoint_key))
    if checkpoint_key not in (None, 'state_dict'):
        raise CheckpointError(f'a detection/segmentation checkpoint keeps its weights under state_dict, not '
                              f'{checkpoint_key!r}')
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    return dict(meta=dict(task=task, dataset_meta=meta.get('dataset_meta'),
                          converted_from_mmengine=meta.get('mmengine_version')),
                state_dict=_tensors(ckpt['state_dict'], 'state_dict'))


def _first_entry(ckpt: dict) -> Optional[str]:
    return next((k for k in STATE_DICT_KEYS if isinstance(ckpt.get(k), dict)), None)
