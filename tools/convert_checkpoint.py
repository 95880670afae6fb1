"""Convert an official MSVMamba checkpoint into a weights-only file for this repository's configs.

    python tools/convert_checkpoint.py OFFICIAL.pth OUT.pth [--config CONFIG] [--checkpoint-key KEY]

* An official ImageNet-1k classification file (``{'model', 'model_ema', 'config', ...}``; Hugging Face
  ``msvmambav3_*_224.pth`` or the Google Drive v1 files) becomes an mmpretrain ``ImageClassifier`` state dict for
  ``configs/msvmamba_*_in1k.py`` (``--checkpoint-key model_ema`` takes the EMA weights).
* An official Mask R-CNN / UperNet file (mmengine-written) keeps its keys, which are already our configs', and
  loses the optimizer and message hub (about 2/3 of the file).

The result holds ``{'meta', 'state_dict'}`` with tensors and plain data only, for a plain
``torch.load(weights_only=True)``: mmpretrain's ``ImageClassificationInferencer``, another codebase. With
``--config`` every tensor is checked against the model the config builds (names and shapes), and any missing,
unexpected or mis-shaped key stops the conversion with the list. See mmmsvmamba/models/checkpoint/.
"""
import argparse
import sys

from mmmsvmamba.cli import UsageError, existing_file, run, usage_errors
from mmmsvmamba.models.checkpoint import (CheckpointError, check_keys, convert_official, load_checkpoint_file,
                                          save_weights_only)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert an official MSVMamba checkpoint into a weights-only file')
    parser.add_argument('src', help='official checkpoint (classification, or mmengine detection/segmentation)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--config', help='check every key and shape against the model of this config')
    parser.add_argument('--checkpoint-key', help='entry of a classification file to convert (default: model)')
    args = parser.parse_args(argv)
    existing_file('checkpoint', args.src)
    existing_file('config file', args.config)

    with usage_errors(CheckpointError):
        converted = convert_official(load_checkpoint_file(args.src), args.checkpoint_key)
    task = converted['meta']['task']
    if args.config:
        from mmmsvmamba.engine.config import build_model, load_config
        with usage_errors(FileNotFoundError, ValueError):
            cfg = load_config(args.config)
        if (task == 'classification') != (cfg.default_scope == 'mmpretrain'):
            raise UsageError(f'{args.src} is an official {task} checkpoint, but {args.config} is an '
                             f'{cfg.default_scope} config')
        own = build_model(cfg).state_dict()
        with usage_errors(CheckpointError):
            check_keys(converted['state_dict'], own, args.src, args.config, outcome='nothing was written')
        print(f'all {len(own)} tensors of {args.config} are in the checkpoint, with matching shapes')
    save_weights_only(converted, args.dst)
    print(f'wrote {args.dst}: {len(converted["state_dict"])} tensors ({task})')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
