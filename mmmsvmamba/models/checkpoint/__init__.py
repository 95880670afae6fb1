"""Checkpoints: reading any file safely, selecting and checking its state dict, converting official files, loading
into a model. Everything that touches a checkpoint's contents is here (tests/test_architecture.py holds it).

* :mod:`.reading`: the restricted unpickler (:func:`load_checkpoint_file`) and :func:`save_weights_only`;
* :mod:`.state_dicts`: which entry holds the weights and DDP's prefix (:func:`select_state_dict`), a backbone's
  official keys (:func:`extract_state_dict`), the one key report (:func:`check_keys`);
* :mod:`.converting`: official classification / detection / segmentation files -> our keys;
* :mod:`.loading`: into a backbone (:func:`load_pretrained`, ``init_cfg``) or a whole model (:func:`load_weights`).

A file that cannot serve raises :class:`CheckpointError` (or its :class:`UnsafeCheckpointError`); a missing file
``FileNotFoundError``.
"""
from .converting import TASKS, convert_official, is_official_classifier, official_task, official_to_mmpretrain
from .loading import load_pretrained, load_weights
from .reading import (CheckpointError, ForeignObject, UnsafeCheckpointError, data_global, load_checkpoint_file,
                      save_weights_only, torch_weights_only_names)
from .state_dicts import STATE_DICT_KEYS, check_keys, extract_state_dict, select_state_dict, strip_prefix

__all__ = [
    'TASKS', 'STATE_DICT_KEYS', 'CheckpointError', 'ForeignObject', 'UnsafeCheckpointError', 'check_keys',
    'convert_official', 'data_global', 'extract_state_dict', 'is_official_classifier', 'load_checkpoint_file',
    'load_pretrained', 'load_weights', 'official_task', 'official_to_mmpretrain', 'save_weights_only',
    'select_state_dict', 'strip_prefix', 'torch_weights_only_names'
]
