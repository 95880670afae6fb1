"""The mmdet, mmseg and mmpretrain inference APIs with our configs, on a real photograph (random weights:
the assertions are about structure, shapes and value ranges), and tools/image_demo.py drawing the results."""
import os

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config

from .conftest import ROOT, load_tool

PHOTO = os.path.join(ROOT, 'tests', 'data', 'grace_hopper.jpg')
HEIGHT, WIDTH = 600, 512
DET_CONFIG = os.path.join(ROOT, 'configs', 'mask_rcnn_msvmamba_n_1x.py')
DET_V3_CONFIG = os.path.join(ROOT, 'configs', 'mask_rcnn_msvmamba_t_1x.py')
SEG_CONFIG = os.path.join(ROOT, 'configs', 'upernet_msvmamba_m_160k_ade20k.py')
CLS_CONFIG = os.path.join(ROOT, 'configs', 'msvmamba_n_in1k.py')


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """The configs name ImageNet weights by URL; nothing here may fetch them."""
    def refuse(url, *args, **kwargs):
        raise AssertionError(f'tried to download {url}')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)


def _det_cfg(path=DET_CONFIG):
    cfg = Config.fromfile(path)
    # a smaller test scale keeps CPU inference quick; results still come back at the photo's resolution
    cfg.test_dataloader.dataset.pipeline[1].scale = (512, 384)
    # random weights score every class near 1/81: keep all boxes so the output has content to check
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    # 100 instead of 1000 proposals: the RoI heads, not the backbone, cost most on a CPU
    cfg.model.test_cfg.rpn.max_per_img = 100
    return cfg


def _seg_cfg():
    cfg = Config.fromfile(SEG_CONFIG)
    cfg.test_dataloader.dataset.pipeline[1].scale = (512, 160)
    return cfg


def _check_instances(instances, num_classes=80):
    boxes, scores, labels, masks = (instances.bboxes, instances.scores, instances.labels, instances.masks)
    n = len(boxes)
    assert 0 < n <= 100 and boxes.shape == (n, 4) and scores.shape == labels.shape == (n, )
    assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()
    assert boxes.min() >= 0 and (boxes[:, [0, 2]] <= WIDTH).all() and (boxes[:, [1, 3]] <= HEIGHT).all()
    assert ((scores >= 0) & (scores <= 1)).all() and (scores[:-1] >= scores[1:]).all()
    assert ((labels >= 0) & (labels < num_classes)).all()
    assert masks.shape == (n, HEIGHT, WIDTH) and masks.dtype == torch.bool


@pytest.mark.parametrize('config', [DET_CONFIG, DET_V3_CONFIG], ids=['v1-nano', 'v3-tiny'])
def test_init_detector_and_inference_detector(config):
    from mmdet.apis import inference_detector, init_detector
    model = init_detector(_det_cfg(config), device='cpu')
    result = inference_detector(model, PHOTO)
    assert result.ori_shape == (HEIGHT, WIDTH)
    _check_instances(result.pred_instances)
    # an array input goes through the same model (mmdet swaps in its array loader)
    from_array = inference_detector(model, mmcv.imread(PHOTO))
    assert torch.allclose(from_array.pred_instances.scores, result.pred_instances.scores)


def test_det_inferencer():
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=_det_cfg(), device='cpu', show_progress=False)
    out = inferencer(PHOTO, return_vis=True, no_save_vis=True, pred_score_thr=0.0)
    prediction = out['predictions'][0]
    n = len(prediction['scores'])
    assert n > 0 and len(prediction['labels']) == len(prediction['bboxes']) == len(prediction['masks']) == n
    assert all(m['size'] == [HEIGHT, WIDTH] for m in prediction['masks'])  # COCO RLE
    assert out['visualization'][0].shape == (HEIGHT, WIDTH, 3)


def test_init_model_and_inference_model():
    from mmseg.apis import inference_model, init_model
    model = init_model(_seg_cfg(), device='cpu')
    result = inference_model(model, PHOTO)
    labels = result.pred_sem_seg.data
    logits = result.seg_logits.data
    assert labels.shape == (1, HEIGHT, WIDTH) and logits.shape == (150, HEIGHT, WIDTH)
    assert labels.min() >= 0 and labels.max() < 150
    assert torch.equal(labels[0], logits.argmax(0))


def test_mmseg_inferencer():
    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(model=_seg_cfg(), device='cpu')
    out = inferencer(PHOTO, return_vis=True)
    # one image in: the bare label map and drawing out (no lists, unlike mmdet)
    assert out['predictions'].shape == (HEIGHT, WIDTH) and out['predictions'].max() < 150
    assert out['visualization'].shape == (HEIGHT, WIDTH, 3)


def test_image_classification_inferencer():
    from mmengine.registry import init_default_scope
    from mmpretrain.apis import ImageClassificationInferencer
    # unlike mmdet's and mmseg's, this inferencer builds its pipeline in whatever registry scope is current
    init_default_scope('mmpretrain')
    inferencer = ImageClassificationInferencer(model=Config.fromfile(CLS_CONFIG), pretrained=False, device='cpu')
    result = inferencer(PHOTO)[0]
    scores = np.asarray(result['pred_scores'])
    assert scores.shape == (1000, ) and np.isclose(scores.sum(), 1, atol=1e-4) and (scores >= 0).all()
    assert result['pred_label'] == int(scores.argmax()) and np.isclose(result['pred_score'], scores.max())


@pytest.mark.parametrize('config', [DET_CONFIG, SEG_CONFIG, CLS_CONFIG], ids=['det', 'seg', 'cls'])
def test_image_demo_draws_into_a_file(tmp_path, config):
    out = str(tmp_path / 'drawn.jpg')
    # random weights: let every detection through so that boxes get drawn
    options = ['--score-thr', '0', '--cfg-options', 'model.test_cfg.rcnn.score_thr=0',
               'model.test_cfg.rpn.max_per_img=100'] if config == DET_CONFIG else []
    assert load_tool('image_demo').main([PHOTO, config, '--out', out, *options]) == 0
    drawing = mmcv.imread(out)
    assert drawing is not None and drawing.ndim == 3
    if config != CLS_CONFIG:
        assert drawing.shape[:2] == (HEIGHT, WIDTH)
        # something was drawn over the photo
        assert np.abs(drawing.astype(int) - mmcv.imread(PHOTO).astype(int)).mean() > 1
