"""Turn an official MSVMamba detection/segmentation checkpoint into a weights-only file for our configs.

The official Mask R-CNN and UperNet checkpoints (v1 Micro/Tiny, Google Drive links in the README of
github.com/YuHengsss/MSVMamba, branch master) were written by mmengine: besides the weights they pickle
mmengine's message hub (``HistoryBuffer`` objects with numpy arrays), the optimizer state and the training
config. Their keys already match our configs (``backbone.*`` = the official names incl. ``backbone.outnorm{i}``;
neck and heads from mmdet 3.3 / mmseg 1.2), so:

* ``load_from=OFFICIAL.pth`` (or ``tools/test.py CONFIG OFFICIAL.pth``) works as is with our configs, whose
  runner reads mmengine's data types under torch's weights-only unpickler;
* this converter writes ``{'meta': {'dataset_meta': ...}, 'state_dict': ...}`` with tensors and plain Python
  data only, for code that calls ``torch.load`` directly, e.g. mmdet's ``init_detector`` / ``DetInferencer``
  and mmseg's ``init_model`` / ``MMSegInferencer``. It also drops the optimizer state (about 2/3 of the file).

    python tools/convert_detseg_checkpoint.py OFFICIAL.pth OUT.pth [--config CONFIG]

With ``--config`` every tensor is checked against the model the config builds (names and shapes); any missing,
unexpected or mis-shaped key stops the conversion with the list.
"""
import argparse
import importlib
import os
import sys
from collections import OrderedDict

import torch

from mmmsvmamba.engine.checkpoint_globals import mmengine_checkpoint_globals


def load_official(path: str) -> dict:
    """Read an mmengine-written checkpoint with the weights-only unpickler (mmengine's data types allowed)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        with mmengine_checkpoint_globals():
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:
        try:
            foreign = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # not a zip-format torch file
            foreign = []
        hint = f' It pickles objects other than mmengine data: {foreign}.' if foreign else ''
        raise RuntimeError(f'cannot read {path} as an mmengine checkpoint.{hint} ({err})') from err


def convert(ckpt: dict) -> dict:
    """The weights-only form of an mmengine checkpoint: ``state_dict`` (``module.`` stripped) and dataset_meta."""
    if 'state_dict' not in ckpt:
        raise KeyError(f'not an mmengine detection/segmentation checkpoint: no "state_dict" entry '
                       f'(entries: {sorted(ckpt)})')
    state_dict = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v) for k, v in ckpt['state_dict'].items())
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise TypeError(f'state_dict entries that are not tensors: {not_tensors[:10]}')
    if not any(k.startswith('backbone.') for k in state_dict):
        raise KeyError('no backbone.* weights in the state dict: this is not a detector/segmentor checkpoint')
    meta = dict(ckpt.get('meta') or {})
    return dict(meta=dict(dataset_meta=meta.get('dataset_meta'), converted_from_mmengine=meta.get('mmengine_version')),
                state_dict=state_dict)


def check_against_config(state_dict: dict, config: str) -> dict:
    """Compare with the model a config builds; raise listing every mismatch. Returns the key counts."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    models = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    own = models.build(cfg.model).state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}' for k, v in state_dict.items()
                  if k in own and v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        lines = [f'{title} ({len(keys)}): {keys[:10]}' for title, keys in
                 (('missing', missing), ('unexpected', unexpected), ('shape mismatch', mismatched)) if keys]
        raise ValueError(f'the checkpoint does not fit {config}:\n  ' + '\n  '.join(lines))
    return dict(tensors=len(own))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official (mmengine) checkpoint')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--config', help='check every key and shape against the model of this config')
    args = parser.parse_args(argv)

    converted = convert(load_official(args.src))
    if args.config:
        counts = check_against_config(converted['state_dict'], args.config)
        print(f'all {counts["tensors"]} tensors of {args.config} are in the checkpoint, with matching shapes')
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    torch.save(converted, args.dst)
    # the whole point: the result must load with torch's default (weights-only) unpickler and nothing else
    torch.load(args.dst, map_location='cpu', weights_only=True)
    print(f'wrote {args.dst}: {len(converted["state_dict"])} tensors')
    return 0


if __name__ == '__main__':
    sys.exit(main())
