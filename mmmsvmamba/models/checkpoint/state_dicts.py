"""State dicts inside checkpoint files: which entry holds the weights, prefixes, legacy names, the one key report.

:func:`select_state_dict` is the one place that picks the weights of a checkpoint dict (``checkpoint_key``, else the
first of :data:`STATE_DICT_KEYS` that holds a dict, else the dict itself when it holds only tensors) and strips
DDP's ``module.``; :func:`extract_state_dict` narrows that to a backbone's official keys; :func:`check_keys` is the
one report of missing, unexpected and mis-shaped keys, raised as :class:`CheckpointError`.
"""
import re
from collections import OrderedDict
from typing import Mapping, Optional

import torch

from .reading import CheckpointError

STATE_DICT_KEYS = ('state_dict', 'model', 'model_ema')
MODULE_PREFIX = 'module.'  # what DataParallel / DistributedDataParallel put before every key
BACKBONE_PREFIX = 'backbone.'
# keys of an official classification model that a backbone does not have (the classifier of VSSM)
CLASSIFIER_PREFIX = 'classifier.'
# old VMamba names that the official VSSM._load_from_state_dict renames silently (official vmamba.py, the loader of
# its VSSM class)
LEGACY_RENAMES = ((r'^patch_embed\.proj\.', 'patch_embed.0.'), (r'^patch_embed\.norm\.', 'patch_embed.2.'),
                  (r'\.ln_1\.', '.norm.'), (r'\.self_attention\.', '.op.'), (r'^norm\.', 'classifier.norm.'),
                  (r'^head\.', 'classifier.head.'))


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


def state_dict_entry(ckpt: dict) -> Optional[str]:
    """The entry of ``ckpt`` that :func:`select_state_dict` takes without a ``checkpoint_key`` (None: ``ckpt`` is a
    bare state dict, or has none)."""
    if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return None
    return next((k for k in STATE_DICT_KEYS if isinstance(ckpt.get(k), dict)), None)


def select_state_dict(ckpt: dict, checkpoint_key: Optional[str] = None, source: str = 'checkpoint') -> OrderedDict:
    """The weights of a checkpoint dict, with ``module.`` stripped: ``ckpt[checkpoint_key]``; without a key, the dict
    itself when it holds only tensors, else the first of :data:`STATE_DICT_KEYS` that holds a dict.

    Raises :class:`CheckpointError` naming the entries when there is no such state dict or it holds non-tensors.
    """
    if checkpoint_key is not None:
        if checkpoint_key not in ckpt:
            raise CheckpointError(f'{source} has no entry {checkpoint_key!r}; it has {sorted(ckpt)}')
        entry = ckpt[checkpoint_key]
    else:
        key = state_dict_entry(ckpt)
        if key is None and not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            raise CheckpointError(f'{source} has no state dict: expected tensors or one of {STATE_DICT_KEYS}, '
                                  f'found {sorted(ckpt)}')
        entry = ckpt if key is None else ckpt[key]
    if not isinstance(entry, Mapping):
        raise CheckpointError(f'{source}: entry {checkpoint_key!r} is a {type(entry).__name__}, not a state dict')
    bad = [k for k, v in entry.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f'{source}: state dict entries that are not tensors: {bad[:5]}')
    return strip_prefix(entry)


def extract_state_dict(ckpt: dict, checkpoint_key: Optional[str] = None, source: str = 'checkpoint') -> OrderedDict:
    """The backbone state dict inside a checkpoint dict, in official key names: :func:`select_state_dict`, then only
    ``backbone.*`` (prefix stripped) when such keys exist, then the legacy VMamba renames."""
    state_dict = select_state_dict(ckpt, checkpoint_key, source)
    if any(k.startswith(BACKBONE_PREFIX) for k in state_dict):
        state_dict = strip_prefix({k: v for k, v in state_dict.items() if k.startswith(BACKBONE_PREFIX)},
                                  BACKBONE_PREFIX)
    return OrderedDict((_rename_legacy(k), v) for k, v in state_dict.items())


def _rename_legacy(key: str) -> str:
    for pattern, replacement in LEGACY_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key
