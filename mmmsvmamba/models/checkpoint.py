"""Loading official MSVMamba checkpoints safely and loudly.

Official training files are dicts ``{'model': state_dict, 'model_ema': ..., 'config': <yacs CfgNode>, ...}``
(spec 7.3). They pickle foreign classes (yacs, numpy scalars), which ``torch.load(weights_only=True)`` refuses, and
its allow-list cannot take a stand-in for a dict subclass such as CfgNode. So we unpickle with a restricted
``pickle.Unpickler`` whose ``find_class`` -- the only way a pickle reaches code -- returns exactly what torch's
weights-only loader trusts, refuses the modules torch blocks (sys, os, posix, nt), and turns every other name into
:class:`ForeignObject`, an inert container: the real class is never imported and no code from the file runs.
Then:

* :func:`load_checkpoint_file`: path or URL -> the unpickled dict.
* :func:`extract_state_dict`: pick ``state_dict`` / ``model`` / ``model_ema`` (or a bare state dict), strip
  ``module.`` and keep only ``backbone.*`` when present, rename legacy VMamba keys, and reshape 1x1-conv weights
  to the 2-D Linear layout.
* :func:`load_pretrained`: load into a backbone with one key report; raise, naming the keys, on anything missing,
  unexpected or mis-shaped. Never continue with random weights.
* :func:`official_to_mmpretrain`: official classifier keys -> an mmpretrain ``ImageClassifier`` state dict.
"""
import logging
import os
import pickle
import re
import types
from collections import OrderedDict
from typing import Optional
from urllib.parse import urlparse

import torch

STATE_DICT_KEYS = ('state_dict', 'model', 'model_ema')
# keys of an official classification model that a backbone does not have (the classifier of VSSM)
CLASSIFIER_PREFIX = 'classifier.'
# old VMamba names that the official VSSM._load_from_state_dict renames silently (spec 7.3)
LEGACY_RENAMES = ((r'^patch_embed\.proj\.', 'patch_embed.0.'), (r'^patch_embed\.norm\.', 'patch_embed.2.'),
                  (r'\.ln_1\.', '.norm.'), (r'\.self_attention\.', '.op.'), (r'^norm\.', 'classifier.norm.'),
                  (r'^head\.', 'classifier.head.'))


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used for the model it was given to."""


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


def _restricted_pickle_module(foreign: set):
    """A pickle-module stand-in for torch.load whose Unpickler resolves globals as described above."""
    from torch import _weights_only_unpickler as weights_only
    trusted = weights_only._get_allowed_globals()
    blocked = set(weights_only._blocklisted_modules)

    class RestrictedUnpickler(pickle.Unpickler):

        def find_class(self, module, name):
            full_name = f'{module}.{name}'
            if full_name in trusted:
                return trusted[full_name]
            if module.split('.')[0] in blocked:
                raise pickle.UnpicklingError(f'refusing {full_name}: the file asks for a function of a blocked '
                                             f'module ({sorted(blocked)}); it is not a plain checkpoint')
            foreign.add(full_name)
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
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename!r}. Check the path, or download the official '
                                'weights listed in docs/model_zoo.md')
    return filename


def load_checkpoint_file(filename: str) -> dict:
    """Unpickle a checkpoint (path or http(s) URL) safely; foreign classes become :class:`ForeignObject` data."""
    path = _local_path(filename)
    foreign = set()
    try:
        # weights_only=False only because torch forbids it together with a pickle_module; the restricted
        # Unpickler above is the gate, and it trusts no more than weights_only=True does.
        ckpt = torch.load(path, map_location='cpu', weights_only=False, pickle_module=_restricted_pickle_module(foreign))
    except Exception as err:
        raise CheckpointError(f'cannot read checkpoint {path!r}: {err}') from err
    if foreign:
        get_logger().info(f'{path}: read pickled {sorted(foreign)} as plain data (ForeignObject)')
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'checkpoint {path!r} holds a {type(ckpt).__name__}, expected a dict')
    return ckpt


def extract_state_dict(ckpt: dict, checkpoint_key: Optional[str] = None, source: str = 'checkpoint') -> OrderedDict:
    """The backbone state dict inside a checkpoint dict, in official key names (see module docstring)."""
    if checkpoint_key is not None:
        if checkpoint_key not in ckpt:
            raise CheckpointError(f'{source} has no entry {checkpoint_key!r}; it has {sorted(ckpt)}')
        state_dict = ckpt[checkpoint_key]
    elif all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state_dict = ckpt
    else:
        found = [k for k in STATE_DICT_KEYS if isinstance(ckpt.get(k), dict)]
        if not found:
            raise CheckpointError(f'{source} has no state dict: expected tensors or one of {STATE_DICT_KEYS}, '
                                  f'found {sorted(ckpt)}')
        state_dict = ckpt[found[0]]
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f'{source}: entries are not tensors: {bad[:5]}')

    state_dict = OrderedDict((_strip(k, 'module.'), v) for k, v in state_dict.items())
    if any(k.startswith('backbone.') for k in state_dict):
        state_dict = OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items() if k.startswith('backbone.'))
    return OrderedDict((_rename_legacy(k), v) for k, v in state_dict.items())


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


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
    unexpected = [k for k in state_dict if k not in own and k not in ignored]
    missing = [k for k in own if k not in state_dict]
    missing_outnorm = [k for k in missing if k.startswith('outnorm')]
    missing = [k for k in missing if k not in missing_outnorm]
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                  for k, v in state_dict.items() if k in own and v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f'checkpoint {filename!r} does not fit this MSVMamba (arch {getattr(model, "arch", "?")}); nothing was '
            f'loaded.\n' + _key_lines('missing', missing) + _key_lines('unexpected', unexpected) +
            _key_lines('shape mismatch', mismatched) +
            'Is the checkpoint for another arch (nano/micro/tiny_v1 are v1, tiny/small/base v3)?')
    loadable = OrderedDict((k, v) for k, v in state_dict.items() if k in own)
    model.load_state_dict(loadable, strict=False)
    report = dict(loaded=list(loadable), missing_outnorm=missing_outnorm, ignored=ignored)
    get_logger().info(f'loaded {len(loadable)} backbone tensors from {filename}; ignored {len(ignored)} classifier '
                      f'keys; kept init for {missing_outnorm or "no"} output norms')
    return report


def _key_lines(title: str, keys: list, limit: int = 10) -> str:
    if not keys:
        return ''
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return f'  {title} ({len(keys)}): {keys[:limit]}{more}\n'


def official_to_mmpretrain(state_dict: dict, num_stages: int = 4) -> OrderedDict:
    """Official classification keys -> mmpretrain ``ImageClassifier`` keys.

    The official final norm ``classifier.norm`` is our backbone's last output norm; ``classifier.head`` is the
    ``LinearClsHead``'s ``fc``; everything else goes under ``backbone.``.
    """
    state_dict = extract_state_dict(state_dict)
    last_norm = f'backbone.outnorm{num_stages - 1}.'
    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('classifier.norm.'):
            converted[last_norm + key[len('classifier.norm.'):]] = value
        elif key.startswith('classifier.head.'):
            converted['head.fc.' + key[len('classifier.head.'):]] = value
        else:
            converted['backbone.' + key] = value
    return converted
