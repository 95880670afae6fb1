"""One image through a config's model with its library's own inferencer (what ``tools/image_demo.py`` runs).

mmdet's ``DetInferencer``, mmseg's ``MMSegInferencer`` or mmpretrain's ``ImageClassificationInferencer``, chosen by
the config's ``default_scope``. Weights may be one of our training checkpoints, an official MSVMamba one or a
converted one (docs/model_zoo.md); mmengine reads them through :mod:`mmmsvmamba.engine`'s checkpoint loader.
"""
import os
import tempfile
from typing import Optional, Tuple

import numpy as np
from mmengine.config import Config

from .config import config_scope


def build_inferencer(cfg: Config, weights: Optional[str] = None, device: str = 'cpu'):
    """The inferencer of ``cfg``'s library, with ``weights`` loaded (random weights without)."""
    scope = cfg.default_scope
    # built in the config's scope: not every inferencer switches the registry scope itself (mmpretrain's does not)
    with config_scope(scope):
        if scope == 'mmdet':
            from mmdet.apis import DetInferencer
            return DetInferencer(model=cfg, weights=weights, device=device, show_progress=False)
        if scope == 'mmseg':
            from mmseg.apis import MMSegInferencer
            return MMSegInferencer(model=cfg, weights=weights, device=device)
        from mmpretrain.apis import ImageClassificationInferencer
        return ImageClassificationInferencer(model=cfg, pretrained=weights or False, device=device)


def infer(inferencer, image: str, score_thr: float = 0.3) -> Tuple[dict, np.ndarray]:
    """``(prediction, drawing)``: the inferencer's prediction for one image file and an RGB picture of it.

    ``score_thr``: detection only, the score above which boxes are drawn.
    """
    import mmcv
    # mmengine's inferencers (mmdet, mmseg) keep their config as .cfg, mmpretrain's as .config
    scope = (getattr(inferencer, 'cfg', None) or inferencer.config).default_scope
    with config_scope(scope):
        if scope == 'mmpretrain':
            # this inferencer only draws into a folder
            with tempfile.TemporaryDirectory() as folder:
                predictions = inferencer(image, show_dir=folder)
                drawn = os.listdir(folder)
                return predictions[0], mmcv.imread(os.path.join(folder, drawn[0]), channel_order='rgb')
        if scope == 'mmdet':
            result = inferencer(image, return_vis=True, no_save_vis=True, pred_score_thr=score_thr)
        else:
            result = inferencer(image, return_vis=True)
    # for a single image mmdet returns one-element lists, mmseg the bare results
    prediction, drawing = result['predictions'], result['visualization']
    return (prediction[0] if isinstance(prediction, list) else prediction), (
        drawing[0] if isinstance(drawing, list) else drawing)
