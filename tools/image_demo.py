"""Run a detection, segmentation or classification config on one image and draw the result into a file.

    python tools/image_demo.py IMAGE CONFIG [--weights CHECKPOINT] --out OUT.jpg [--device cpu] [--score-thr 0.3]
                                [--cfg-options KEY=VALUE ...]

Uses the library's own inferencer (mmdet DetInferencer, mmseg MMSegInferencer, mmpretrain
ImageClassificationInferencer), chosen by the config's default_scope (mmmsvmamba/engine/inference.py). CHECKPOINT
may be one of our training checkpoints, an official MSVMamba one, or a converted one (docs/model_zoo.md); without it
the model keeps random weights, which only shows that the pipeline runs.
"""
import argparse
import os
import sys

from mmengine.config import DictAction

from mmmsvmamba.cli import UsageError, existing_file, run, usage_errors
from mmmsvmamba.engine.config import load_config
from mmmsvmamba.engine.inference import build_inferencer, infer

IMAGE_TYPES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def main(argv=None):
    parser = argparse.ArgumentParser(description='Draw the predictions of a config on one image')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file (detection, segmentation or classification)')
    parser.add_argument('--weights', help='checkpoint (default: random weights)')
    parser.add_argument('--out', required=True, help=f'output image file ({", ".join(IMAGE_TYPES)})')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection: draw boxes above this score')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    args = parser.parse_args(argv)
    existing_file('image', args.image)
    existing_file('checkpoint', args.weights)
    if os.path.splitext(args.out)[1].lower() not in IMAGE_TYPES:
        raise UsageError(f'--out {args.out}: the file name must end in one of {", ".join(IMAGE_TYPES)}')
    import torch
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise UsageError(f'--device {args.device}: no CUDA device is available (use --device cpu)')
    with usage_errors(FileNotFoundError, ValueError):
        cfg = load_config(args.config, args.cfg_options)

    import mmcv
    _, drawing = infer(build_inferencer(cfg, args.weights, args.device), args.image, args.score_thr)
    if not mmcv.imwrite(mmcv.rgb2bgr(drawing), args.out, auto_mkdir=True):
        raise UsageError(f'could not write {args.out}')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
