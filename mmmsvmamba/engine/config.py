"""Reading the configs of the three tasks (mmdet, mmseg, mmpretrain) and building their models.

A config's ``default_scope`` names the library whose registries build it; every tool and test goes through
:func:`load_config` (file and scope checks whose errors name the problem) and :func:`build_model`.
"""
import contextlib
import os.path as osp
from typing import Iterator, Optional

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from ..registry import LIBRARIES

SCOPES = LIBRARIES  # the default_scope of a config is the library that runs it


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config (importing its ``custom_imports``) and merge ``cfg_options`` (as ``--cfg-options``).

    Raises FileNotFoundError for a missing file and ValueError when ``default_scope`` is not one of
    :data:`SCOPES`.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('default_scope') not in SCOPES:
        raise ValueError(f'{path}: default_scope must be one of {SCOPES} (it decides whether mmdet, mmseg or '
                         f'mmpretrain runs the config), got {cfg.get("default_scope")!r}')
    return cfg


@contextlib.contextmanager
def config_scope(scope: str) -> Iterator[None]:
    """mmengine's default scope set to ``scope`` inside the block (whatever an earlier config set), restored after."""
    with DefaultScope.overwrite_default_scope(scope):
        yield


def build_model(cfg: Config) -> nn.Module:
    """The model of a config, built by its library's registry, with its random initialisation."""
    with config_scope(cfg.default_scope):
        return MODELS.build(cfg.model)
