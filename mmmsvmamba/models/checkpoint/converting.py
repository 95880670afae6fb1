"""Converting official MSVMamba checkpoint files into this package's keys (``tools/convert_checkpoint.py``).

An official classification file (``{'model', 'model_ema', 'config', ...}``) becomes the state dict of mmpretrain's
``ImageClassifier`` with an MSVMamba backbone (:func:`official_to_mmpretrain`; the same keys as
:class:`mmmsvmamba.models.ImageNetClassifier`); an official detection/segmentation file (mmengine-written) keeps its
keys, which already are our configs', without the optimizer and message hub (:func:`convert_official`).
"""
from collections import OrderedDict
from typing import Mapping, Optional

from .reading import CheckpointError
from .state_dicts import (BACKBONE_PREFIX, extract_state_dict, select_state_dict, state_dict_entry,
                          strip_prefix)

# what convert_official makes of each kind of official file
TASKS = ('classification', 'detseg')


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


def is_official_classifier(state_dict: Mapping) -> bool:
    """Whether a state dict (from :func:`select_state_dict`) is an official classification model's: the official
    classifier's keys and no ``backbone.*`` ones."""
    return (not any(k.startswith(BACKBONE_PREFIX) for k in state_dict)
            and any(k.startswith('classifier.head.') for k in extract_state_dict(state_dict)))


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
        if is_official_classifier(select_state_dict(ckpt)):
            return 'classification'
    except CheckpointError:
        pass
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
        return dict(meta=dict(task=task, entry=checkpoint_key or state_dict_entry(ckpt)),
                    state_dict=official_to_mmpretrain(ckpt, checkpoint_key=checkpoint_key))
    if checkpoint_key not in (None, 'state_dict'):
        raise CheckpointError(f'a detection/segmentation checkpoint keeps its weights under state_dict, not '
                              f'{checkpoint_key!r}')
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    return dict(meta=dict(task=task, dataset_meta=meta.get('dataset_meta'),
                          converted_from_mmengine=meta.get('mmengine_version')),
                state_dict=select_state_dict(ckpt, 'state_dict', 'state_dict'))
