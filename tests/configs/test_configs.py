"""Every config loads, builds its model (with the official parameter counts), carries the issue's hyper-parameters,
is listed in the metafile with the figures of its model, and trains one step on CPU."""
import glob
import os
import re

import pytest
import torch

from mmmsvmamba import MSVMamba
from mmmsvmamba.analysis.published import published, published_figures
from mmmsvmamba.engine.config import build_model, load_config
from tests.official import facts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'),
                                                               recursive=True) if '_base_' not in p)
DET = [c for c in CONFIGS if re.fullmatch(r'configs/mask_rcnn_msvmamba_[a-z1-]+_(1x|3x)\.py', c)]
SEG = [c for c in CONFIGS if re.fullmatch(r'configs/upernet_msvmamba_[a-z1-]+_160k_ade20k\.py', c)]
CLS = [c for c in CONFIGS if re.fullmatch(r'configs/msvmamba_[a-z1-]+_in1k\.py', c)]
DEMO = [c for c in CONFIGS if c.startswith('configs/demo/')]
ALIASES = {'n': 'nano', 'm': 'micro', 't-v1': 'tiny_v1', 't': 'tiny', 's': 'small', 'b': 'base'}
HF = 'https://huggingface.co/YuhengSSS/MSVMamba/resolve/main/msvmambav3_{}_224.pth'


def _alias(config):
    return re.search(r'msvmamba_([a-z1-]+?)_(1x|3x|160k|in1k)', config).group(1)


def _load(config):
    return load_config(os.path.join(ROOT, config))


def _build(cfg):
    return build_model(cfg)


def test_the_full_set_of_configs_exists():
    assert len(DET) == 12 and len(SEG) == 6 and len(CLS) == 6
    for family in (DET, SEG, CLS):
        assert {_alias(c) for c in family} == set(ALIASES)
    assert len(DEMO) >= 2


@pytest.mark.parametrize('config', CONFIGS)
def test_config_loads_with_plugin_imports(config):
    cfg = _load(config)
    assert cfg.default_scope in ('mmdet', 'mmseg', 'mmpretrain')
    assert cfg.custom_imports['imports'][0] == 'mmmsvmamba' and cfg.custom_imports['allow_failed_imports'] is False
    assert 'mmmsvmamba.engine' in cfg.custom_imports['imports'] and 'runner_type' not in cfg
    assert cfg.model.backbone.type == 'MSVMamba'
    assert any(h['type'] == 'RNGStateHook' for h in cfg.custom_hooks)


@pytest.mark.parametrize('config', DET + SEG + CLS)
def test_backbone_arch_channels_and_weights(config):
    cfg = _load(config)
    arch = ALIASES[_alias(config)]
    backbone = cfg.model.backbone
    assert backbone.arch == arch
    dims = list(MSVMamba.parse_arch(arch)['dims'])
    if config in DET:
        assert cfg.model.neck.in_channels == dims and backbone.drop_path_rate == 0.2
    elif config in SEG:
        assert cfg.model.decode_head.in_channels == dims and cfg.model.auxiliary_head.in_channels == dims[2]
        assert cfg.model.auxiliary_head.in_index == 2 and cfg.model.decode_head.num_classes == 150
        assert backbone.drop_path_rate == (0.3 if arch in ('nano', 'micro') else 0.2)
    else:
        assert backbone.out_indices == (3, ) and cfg.model.head.in_channels == dims[3]
        assert backbone.drop_path_rate == MSVMamba.arch_zoo[arch]['drop_path_rate']
    if config in DET + SEG:
        checkpoint = backbone.init_cfg.checkpoint
        if arch in ('tiny', 'small', 'base'):
            assert checkpoint == HF.format(arch)
        else:  # v1 ImageNet weights only exist as a Google Drive folder: a local path that fails loudly if absent
            assert checkpoint == f'checkpoints/msvmamba_{arch}_in1k.pth'


@pytest.mark.parametrize('config', DET)
def test_mask_rcnn_recipe(config):
    cfg = _load(config)
    optim = cfg.optim_wrapper
    assert optim.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05)
    assert optim.paramwise_cfg.norm_decay_mult == 0.0
    assert cfg.train_dataloader.batch_size == 2 and cfg.auto_scale_lr.base_batch_size == 16
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.by_epoch, warmup.end) == ('LinearLR', 0.001, False, 1000)
    assert steps.type == 'MultiStepLR' and steps.gamma == 0.1
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert pipeline[0].type == 'StrictLoadImageFromFile'
    assert cfg.test_dataloader.dataset.pipeline[0].type == 'LoadImageFromFile'
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (1333, 800)
    if config.endswith('_1x.py'):
        assert cfg.train_cfg.max_epochs == 12 and steps.milestones == [8, 11]
        assert [t.scale for t in pipeline if t.type == 'Resize'] == [(1333, 800)]
    else:
        assert cfg.train_cfg.max_epochs == 36 and steps.milestones == [27, 33] and steps.end == 36
        choice = next(t for t in pipeline if t.type == 'RandomChoice')
        short_sides = {s[0] for s in choice.transforms[0][0].scales}
        assert min(short_sides) == 480 and max(short_sides) == 800
        assert [t.type for t in choice.transforms[1]] == ['RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize']


@pytest.mark.parametrize('config', SEG)
def test_upernet_recipe(config):
    cfg = _load(config)
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end, warmup.by_epoch) == ('LinearLR', 1500, False)
    assert (poly.type, poly.begin, poly.end, poly.power) == ('PolyLR', 1500, 160000, 1.0)
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size == 2
    assert cfg.crop_size == (512, 512) and cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.model.decode_head.type == 'UPerHead' and cfg.model.auxiliary_head.type == 'FCNHead'


@pytest.mark.parametrize('config', CLS)
def test_imagenet_recipe(config):
    cfg = _load(config)
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.optim_wrapper.optimizer.lr == 1e-3
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 1024
    assert any(h['type'] == 'EMAHook' for h in cfg.custom_hooks)


def _name(config):
    return os.path.splitext(os.path.basename(config))[0]


def test_metafile_lists_every_config():
    import yaml
    with open(os.path.join(ROOT, 'mmmsvmamba', 'analysis', 'metafile.yml')) as f:
        models = {m['Config']: m for m in yaml.safe_load(f)['Models']}
    assert sorted(models) == sorted(DET + SEG + CLS)
    with open(os.path.join(ROOT, 'model-index.yml')) as f:
        assert 'mmmsvmamba/analysis/metafile.yml' in f.read()
    for config, model in models.items():
        assert model['Name'] == _name(config) and model['In Collection'] == 'MSVMamba'
    assert sorted(e.config for e in published_figures().values() if e.config) == sorted(DET + SEG + CLS)


@pytest.mark.parametrize('config', DET + SEG + CLS)
def test_metafile_entry_describes_the_configs_model(config):
    cfg, entry = _load(config), published(_name(config))
    assert entry.config == config and entry.scope == cfg.default_scope
    assert entry.arch == ALIASES[_alias(config)] == cfg.model.backbone.arch


@pytest.mark.parametrize('config', CONFIGS)
def test_model_builds(config):
    cfg = _load(config)
    model = _build(cfg)
    arch = model.backbone.arch
    params = sum(p.numel() for p in model.backbone.parameters())
    if config in DET + SEG + CLS:
        assert sum(p.numel() for p in model.parameters()) == published(_name(config)).params
    if config in CLS:
        assert sum(p.numel() for p in model.parameters()) == facts(ALIASES[_alias(config)])['params_cls_model']
    elif config in DET + SEG:
        assert params == facts(ALIASES[_alias(config)])['params_mm_backbone_with_outnorms']
        assert arch == MSVMamba.parse_arch(ALIASES[_alias(config)])


def _det_batch(num_classes, with_objects=True):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    generator = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(2):
        inputs.append(torch.randint(0, 256, (3, 64, 80), generator=generator, dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(img_shape=(64, 80), ori_shape=(64, 80), scale_factor=(1.0, 1.0),
                                             pad_shape=(64, 80), batch_input_shape=(64, 80)))
        instances = InstanceData()
        masks = torch.zeros(2 if with_objects else 0, 64, 80, dtype=torch.uint8)
        if with_objects:
            masks[0, 8:40, 10:50] = 1
            masks[1, 30:60, 40:75] = 1
            instances.bboxes = torch.tensor([[10., 8., 50., 40.], [40., 30., 75., 60.]])
            instances.labels = torch.tensor([0, num_classes - 1])
        else:
            instances.bboxes = torch.zeros(0, 4)
            instances.labels = torch.zeros(0, dtype=torch.long)
        instances.masks = BitmapMasks(masks.numpy(), 64, 80)
        sample.gt_instances = instances
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _seg_batch(num_classes):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    generator = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(2):
        inputs.append(torch.randint(0, 256, (3, 64, 64), generator=generator, dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, 64, 64), generator=generator)
        label[:, :4] = 255  # ignored pixels
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _one_training_step(model, data):
    model.train()
    data = model.data_preprocessor(data, training=True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total) and total > 0
    total.backward()
    backbone_grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in backbone_grads)
    assert sum(float(g.abs().sum()) for g in backbone_grads) > 0
    return losses


def test_3x_configs_train_the_same_model_as_1x():
    for config in DET:
        if config.endswith('_3x.py'):
            assert _load(config).model == _load(config.replace('_3x.py', '_1x.py')).model


@pytest.mark.parametrize('config', [c for c in DET if c.endswith('_3x.py')])
def test_3x_config_is_its_1x_config_with_another_schedule_and_pipeline(config):
    three, one = _load(config).to_dict(), _load(config.replace('_3x.py', '_1x.py')).to_dict()
    # the recipe's own names, suffixed _3x because two bases of one config may not share a name
    assert set(three) - set(one) == {'multi_scales', 'train_pipeline_3x', 'max_epochs_3x', 'param_scheduler_3x'}
    assert {k for k in one if three[k] != one[k]} == {'train_pipeline', 'train_dataloader', 'max_epochs',
                                                       'train_cfg', 'param_scheduler'}
    assert three['train_pipeline'] == three['train_pipeline_3x'] == three['train_dataloader']['dataset']['pipeline']
    one['train_dataloader']['dataset']['pipeline'] = three['train_pipeline']
    assert three['train_dataloader'] == one['train_dataloader']
    assert three['train_cfg'] == dict(one['train_cfg'], max_epochs=36) and three['max_epochs'] == 36


@pytest.mark.parametrize('config', [c for c in DET if c.endswith('_1x.py')])
def test_mask_rcnn_trains_one_step_on_cpu(config):
    torch.manual_seed(0)
    cfg = _load(config)
    # the full architecture with fewer sampled RoIs (the RoI heads' cost, not the backbone's, dominates on a CPU)
    cfg.model.train_cfg.rpn_proposal.max_per_img = 64
    cfg.model.train_cfg.rcnn.sampler.num = 32
    model = _build(cfg)
    losses = _one_training_step(model, _det_batch(num_classes=80))
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)


@pytest.mark.parametrize('config', SEG)
def test_upernet_trains_one_step_on_cpu(config):
    torch.manual_seed(0)
    cfg = _load(config)
    cfg.model.data_preprocessor.size = (64, 64)  # the configs pad to 512x512 crops; tiny inputs keep this fast
    model = _build(cfg)
    losses = _one_training_step(model, _seg_batch(num_classes=150))
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)


def test_images_without_objects_train_without_error():
    torch.manual_seed(0)
    model = _build(_load('configs/demo/mask_rcnn_msvmamba_demo_shapes.py'))
    model.train()
    data = model.data_preprocessor(_det_batch(num_classes=4, with_objects=False), training=True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    # with nothing to find there is nothing to regress or segment; the classifiers still learn "background"
    assert float(losses['loss_mask']) == 0 and float(losses['loss_bbox']) == 0 and float(losses['loss_cls']) > 0
