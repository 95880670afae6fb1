"""Loading checkpoints into models, all-or-nothing: a backbone from any official or mmmsvmamba file
(:func:`load_pretrained`, what ``init_cfg`` runs) and a whole model from its own weights (:func:`load_weights`).

Never random weights: whatever does not fit raises :class:`CheckpointError` with the key report of
:func:`check_keys`, and the model is left untouched.
"""
from collections import OrderedDict
from typing import Optional

import torch

from .converting import is_official_classifier, official_to_mmpretrain
from .reading import get_logger, load_checkpoint_file
from .state_dicts import CLASSIFIER_PREFIX, check_keys, extract_state_dict, select_state_dict


def _fit_shape(value: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Official v3 in_proj/out_proj may be stored as 1x1 convs (out, in, 1, 1); ours are Linear (out, in)."""
    def without_unit_dims(size):
        return [d for d in size if d != 1]

    if value.shape != shape and without_unit_dims(value.shape) == without_unit_dims(shape):
        return value.reshape(shape)
    return value


def load_pretrained(model: torch.nn.Module, filename: str, checkpoint_key: Optional[str] = None) -> dict:
    """Load an official (or mmmsvmamba) checkpoint into an MSVMamba backbone, all-or-nothing.

    The file's weights (:func:`select_state_dict`), only ``backbone.*`` when present, legacy VMamba keys renamed
    (:func:`extract_state_dict`); ``classifier.*`` keys of a classification checkpoint are expected extras;
    ``outnorm{i}`` absent from a classification checkpoint keep their init (as in the official wrapper). Anything
    else missing, unexpected or of another shape raises :class:`CheckpointError` naming the keys.

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


def load_weights(model: torch.nn.Module, filename: str, checkpoint_key: Optional[str] = None) -> list:
    """Load every tensor of ``model`` (a classifier, detector or segmentor) from a checkpoint of the same model,
    all-or-nothing; returns the loaded keys.

    The file's weights are :func:`select_state_dict`'s; an official classification file is converted first
    (:func:`official_to_mmpretrain`), so it loads into mmpretrain's ImageClassifier and
    :class:`mmmsvmamba.models.ImageNetClassifier` alike.
    """
    state_dict = select_state_dict(load_checkpoint_file(filename), checkpoint_key, source=filename)
    if is_official_classifier(state_dict):
        state_dict = official_to_mmpretrain(state_dict)
    check_keys(state_dict, model.state_dict(), f'checkpoint {filename!r}', f'this {type(model).__name__}')
    model.load_state_dict(state_dict, strict=True)
    return list(state_dict)
