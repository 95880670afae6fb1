"""Run a detection, segmentation or classification config on one image and draw the result into a file.

    python tools/image_demo.py IMAGE CONFIG [--weights CHECKPOINT] --out OUT.jpg [--device cpu] [--score-thr 0.3]
                                [--cfg-options KEY=VALUE ...]

Uses the library's own inferencer (mmdet DetInferencer, mmseg MMSegInferencer, mmpretrain
ImageClassificationInferencer), chosen by the config's default_scope. CHECKPOINT may be one of our training
checkpoints, an official MSVMamba one, or a converted one (docs/model_zoo.md); without it the model keeps random
weights, which only shows that the pipeline runs.
"""
import argparse
import os
import sys
import tempfile

import mmcv
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import mmmsvmamba.engine  # noqa: F401  (reads mmengine training checkpoints under torch >= 2.6)


def infer(image: str, config: str, weights=None, device: str = 'cpu', score_thr: float = 0.3, cfg_options=None):
    """Returns ``(summary, drawing)``: the inferencer's predictions for the image and an RGB picture of them."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg', 'mmpretrain'):
        raise ValueError(f'{config}: default_scope must be mmdet, mmseg or mmpretrain, got {scope!r}')
    # not every inferencer switches the registry scope itself (mmpretrain's does not)
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer
        inferencer = DetInferencer(model=cfg, weights=weights, device=device, show_progress=False)
    elif scope == 'mmseg':
        from mmseg.apis import MMSegInferencer
        inferencer = MMSegInferencer(model=cfg, weights=weights, device=device)
    else:
        from mmpretrain.apis import ImageClassificationInferencer
        inferencer = ImageClassificationInferencer(model=cfg, pretrained=weights or False, device=device)
    if scope == 'mmpretrain':
        # this inferencer only draws into a folder
        with tempfile.TemporaryDirectory() as folder:
            predictions = inferencer(image, show_dir=folder)
            drawn = os.listdir(folder)
            drawing = mmcv.imread(os.path.join(folder, drawn[0]), channel_order='rgb')
        return predictions[0], drawing
    if scope == 'mmdet':
        result = inferencer(image, return_vis=True, no_save_vis=True, pred_score_thr=score_thr)
    else:
        result = inferencer(image, return_vis=True)
    # for a single image mmdet returns one-element lists, mmseg the bare results
    prediction, drawing = result['predictions'], result['visualization']
    return (prediction[0] if isinstance(prediction, list) else prediction), (
        drawing[0] if isinstance(drawing, list) else drawing)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Draw the predictions of a config on one image')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file (detection, segmentation or classification)')
    parser.add_argument('--weights', help='checkpoint (default: random weights)')
    parser.add_argument('--out', required=True, help='output image file')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection: draw boxes above this score')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    args = parser.parse_args(argv)
    if not os.path.isfile(args.image):
        raise FileNotFoundError(f'image not found: {args.image}')
    _, drawing = infer(args.image, args.config, args.weights, args.device, args.score_thr, args.cfg_options)
    if not mmcv.imwrite(mmcv.rgb2bgr(drawing), args.out, auto_mkdir=True):
        raise OSError(f'could not write {args.out}')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
