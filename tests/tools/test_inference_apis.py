"""The mmdet, mmseg and mmpretrain inference APIs run this package's backbone with the weights they were given: the
model they build holds our MSVMamba with every tensor of the checkpoint (read by mmmsvmamba.engine's loader, message
hub and all), their predictions change when the backbone weights change, and what the backbone computes inside the
API equals a standalone MSVMamba loaded with the package's own loader; a converted official classification file
gives the official classifier's scores. tools/image_demo.py draws the results into files."""
import os
import subprocess
import sys
from collections import OrderedDict

import mmcv
import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

from mmmsvmamba import MSVMamba
from mmmsvmamba.engine.config import build_model, load_config
from mmmsvmamba.engine.inference import build_inferencer, infer
from mmmsvmamba.models import convert_official, load_pretrained
from mmmsvmamba.models.checkpoint import save_weights_only
from tests.official import official_classifier_state_dict, save_official_training_file

from .conftest import ROOT

PHOTO = os.path.join(ROOT, 'tests', 'data', 'grace_hopper.jpg')
HEIGHT, WIDTH = 600, 512
DET_CONFIG = os.path.join(ROOT, 'configs', 'mask_rcnn_msvmamba_n_1x.py')
DET_V3_CONFIG = os.path.join(ROOT, 'configs', 'mask_rcnn_msvmamba_t_1x.py')
SEG_CONFIG = os.path.join(ROOT, 'configs', 'upernet_msvmamba_m_160k_ade20k.py')
CLS_CONFIG = os.path.join(ROOT, 'configs', 'msvmamba_n_in1k.py')
# a smaller test scale keeps CPU inference quick (results still come back at the photo's resolution); random heads
# score every class near 1/81, so keep all boxes; 100 proposals instead of 1000 (the RoI heads cost most on a CPU)
DET_OPTIONS = {'test_dataloader.dataset.pipeline.1.scale': (512, 384), 'model.test_cfg.rcnn.score_thr': 0.0,
               'model.test_cfg.rpn.max_per_img': 100}
# (mmseg's inference_model reads test_pipeline, its inferencer test_dataloader's)
SEG_OPTIONS = {'test_dataloader.dataset.pipeline.1.scale': (512, 160), 'test_pipeline.1.scale': (512, 160)}


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """The configs name ImageNet weights by URL; nothing here may fetch them."""
    def refuse(url, *args, **kwargs):
        raise AssertionError(f'tried to download {url}')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)


def _config(path, options):
    cfg = load_config(path, options)
    cfg.model.backbone.init_cfg = None  # the ImageNet weights are not here; the checkpoints below replace them
    return cfg


def _training_checkpoint(path, cfg, seed):
    """A checkpoint as mmengine writes it (message hub with HistoryBuffers of numpy values) of the config's model,
    whose backbone weights are the init plus seed-dependent noise; returns its state dict."""
    torch.manual_seed(0)
    state = build_model(cfg).state_dict()
    generator = torch.Generator().manual_seed(seed)
    state = OrderedDict((k, v + 0.02 * torch.randn(v.shape, generator=generator)
                         if k.startswith('backbone.') and v.is_floating_point() else v) for k, v in state.items())
    hub = MessageHub(f'inference_{seed}')
    hub.update_scalar('train/loss', np.float64(0.5))
    torch.save(dict(meta=dict(seed=0, epoch=12), state_dict=state, message_hub=hub.state_dict()), path)
    return state


def _backbone_io(model):
    """Record what the model's backbone gets and returns during the next forward."""
    seen = {}

    def hook(module, args, output):
        seen.update(inputs=args[0].detach().clone(), outputs=[o.detach().clone() for o in output])

    return seen, model.backbone.register_forward_hook(hook)


def _standalone_backbone(cfg, checkpoint):
    """The config's backbone built as a plain MSVMamba and loaded by the package's loader (torch only)."""
    backbone = dict(cfg.model.backbone)
    backbone.pop('type')
    model = MSVMamba(**backbone).eval()
    load_pretrained(model, checkpoint)
    return model


def _assert_same_weights(model, state):
    own = model.state_dict()
    assert own.keys() == state.keys()
    different = [k for k in state if not torch.equal(own[k].cpu(), state[k])]
    assert not different, different[:5]


@pytest.fixture(scope='module', params=[DET_CONFIG, DET_V3_CONFIG], ids=['v1-nano', 'v3-tiny'])
def detector(request, tmp_path_factory):
    cfg = _config(request.param, DET_OPTIONS)
    folder = tmp_path_factory.mktemp('det')
    paths = [str(folder / f'epoch_{seed}.pth') for seed in (1, 2)]
    states = [_training_checkpoint(path, cfg, seed) for path, seed in zip(paths, (1, 2))]
    return dict(cfg=cfg, paths=paths, states=states)


def test_init_detector_runs_our_backbone_with_the_checkpoint(detector):
    from mmdet.apis import inference_detector, init_detector
    cfg, path = detector['cfg'], detector['paths'][0]
    model = init_detector(cfg, path, device='cpu')
    assert type(model.backbone) is MSVMamba and model.backbone.arch == MSVMamba.parse_arch(cfg.model.backbone.arch)
    _assert_same_weights(model, detector['states'][0])
    seen, handle = _backbone_io(model)
    result = inference_detector(model, PHOTO)
    handle.remove()
    assert result.ori_shape == (HEIGHT, WIDTH) and len(result.pred_instances) > 0
    with torch.no_grad():
        standalone = _standalone_backbone(cfg, path)(seen['inputs'])
    for ours, inside in zip(standalone, seen['outputs'], strict=True):
        torch.testing.assert_close(ours, inside)


def test_detections_follow_the_backbone_weights(detector):
    from mmdet.apis import inference_detector, init_detector
    scores = []
    for path in detector['paths']:
        model = init_detector(detector['cfg'], path, device='cpu')
        scores.append(inference_detector(model, PHOTO).pred_instances.scores)
    assert len(scores[0]) != len(scores[1]) or not torch.allclose(scores[0], scores[1])


def test_det_inferencer_and_image_demo_use_the_same_model(detector, tmp_path):
    from mmdet.apis import inference_detector, init_detector
    cfg, path = detector['cfg'], detector['paths'][0]
    inferencer = build_inferencer(cfg, path)
    _assert_same_weights(inferencer.model, detector['states'][0])
    prediction, drawing = infer(inferencer, PHOTO, score_thr=0.0)
    direct = inference_detector(init_detector(cfg, path, device='cpu'), PHOTO).pred_instances
    np.testing.assert_allclose(prediction['scores'], direct.scores.numpy(), rtol=1e-5)
    np.testing.assert_allclose(prediction['bboxes'], direct.bboxes.numpy(), rtol=1e-4, atol=1e-3)
    assert drawing.shape == (HEIGHT, WIDTH, 3)


@pytest.fixture(scope='module')
def segmentor(tmp_path_factory):
    cfg = _config(SEG_CONFIG, SEG_OPTIONS)
    folder = tmp_path_factory.mktemp('seg')
    paths = [str(folder / f'iter_{seed}.pth') for seed in (1, 2)]
    states = [_training_checkpoint(path, cfg, seed) for path, seed in zip(paths, (1, 2))]
    return dict(cfg=cfg, paths=paths, states=states)


def test_init_model_runs_our_backbone_and_follows_its_weights(segmentor):
    from mmseg.apis import inference_model, init_model
    cfg = segmentor['cfg']
    logits = []
    for path, state in zip(segmentor['paths'], segmentor['states']):
        model = init_model(cfg, path, device='cpu')
        assert type(model.backbone) is MSVMamba
        _assert_same_weights(model, state)
        seen, handle = _backbone_io(model)
        result = inference_model(model, PHOTO)
        handle.remove()
        assert result.seg_logits.data.shape == (150, HEIGHT, WIDTH)
        logits.append(result.seg_logits.data)
        with torch.no_grad():
            standalone = _standalone_backbone(cfg, path)(seen['inputs'])
        for ours, inside in zip(standalone, seen['outputs'], strict=True):
            torch.testing.assert_close(ours, inside)
    assert not torch.allclose(logits[0], logits[1])


def test_mmseg_inferencer_labels_are_the_models_argmax(segmentor):
    from mmseg.apis import inference_model, init_model
    cfg, path = segmentor['cfg'], segmentor['paths'][0]
    labels, drawing = infer(build_inferencer(cfg, path), PHOTO)
    direct = inference_model(init_model(cfg, path, device='cpu'), PHOTO).seg_logits.data.argmax(0)
    assert np.array_equal(labels, direct.numpy()) and drawing.shape == (HEIGHT, WIDTH, 3)


@pytest.fixture(scope='module')
def official_nano(tmp_path_factory):
    """An official ImageNet training file of v1 Nano and its conversion for mmpretrain."""
    folder = tmp_path_factory.mktemp('cls')
    state = official_classifier_state_dict(MSVMamba.parse_arch('nano'), num_classes=1000)
    official, converted = str(folder / 'official.pth'), str(folder / 'converted.pth')
    save_official_training_file(official, state)
    from mmmsvmamba.models import load_checkpoint_file
    save_weights_only(convert_official(load_checkpoint_file(official)), converted)
    return dict(state=state, official=official, converted=converted)


def _official_scores(state, images):
    """The official classifier on ``images`` (B, 3, H, W), written out: our backbone with the official weights, the
    official classifier.norm on the last stage, average pooling, classifier.head, softmax."""
    backbone = MSVMamba('nano', out_indices=(3, )).eval()
    backbone.load_state_dict({**{k: v for k, v in state.items() if not k.startswith('classifier.')},
                              'outnorm3.weight': state['classifier.norm.weight'],
                              'outnorm3.bias': state['classifier.norm.bias']})
    with torch.no_grad():
        features = backbone(images)[-1].mean(dim=(2, 3))
        logits = torch.nn.functional.linear(features, state['classifier.head.weight'], state['classifier.head.bias'])
    return logits.softmax(-1)


def test_classification_inferencer_gives_the_official_classifiers_scores(official_nano):
    cfg = load_config(CLS_CONFIG)
    inferencer = build_inferencer(cfg, official_nano['converted'])
    assert type(inferencer.model.backbone) is MSVMamba
    seen, handle = _backbone_io(inferencer.model)
    prediction, _ = infer(inferencer, PHOTO)
    handle.remove()
    expected = _official_scores(official_nano['state'], seen['inputs'])[0]
    np.testing.assert_allclose(np.asarray(prediction['pred_scores']), expected.numpy(), rtol=1e-4, atol=1e-6)
    assert prediction['pred_label'] == int(expected.argmax())


@pytest.mark.parametrize('config, options', [
    (DET_CONFIG, ['--score-thr', '0', '--cfg-options', 'model.test_cfg.rcnn.score_thr=0',
                  'model.test_cfg.rpn.max_per_img=100']),
    (SEG_CONFIG, []),
    (CLS_CONFIG, []),
], ids=['det', 'seg', 'cls'])
def test_image_demo_draws_into_a_file(tmp_path, config, options):
    out = str(tmp_path / 'drawn.jpg')
    result = subprocess.run([sys.executable, 'tools/image_demo.py', PHOTO, config, '--out', out, *options], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().endswith(f'wrote {out}')
    drawing = mmcv.imread(out)
    assert drawing is not None and drawing.ndim == 3
    if config != CLS_CONFIG:
        assert drawing.shape[:2] == (HEIGHT, WIDTH)
        # something was drawn over the photo
        assert np.abs(drawing.astype(int) - mmcv.imread(PHOTO).astype(int)).mean() > 1
