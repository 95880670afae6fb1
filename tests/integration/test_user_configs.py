"""Configs written the usual OpenMMLab way, outside this repository: they inherit the libraries' own model bases
through the scope prefix (``mmdet::``, ``mmseg::``, ``mmpretrain::``), plug MSVMamba in with ``custom_imports``,
build, and train one step (loss, backward: every backbone parameter gets a gradient)."""
import importlib.util
import textwrap

import pytest
import torch

from mmmsvmamba.stacks import STACK, scope_prefix_resolves

# a small v3 network (one block per stage) keeps the step fast; the configs are what is tested
ARCH = dict(version='v3', dims=16, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=2, gate=False)
DIMS = [16, 32, 64, 128]
CONFIGS = {
    'mmdet': f'''
        _base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
        custom_imports = dict(imports=['mmmsvmamba'], allow_failed_imports=False)
        default_scope = 'mmdet'
        model = dict(
            backbone=dict(_delete_=True, type='MSVMamba', arch={ARCH!r}, out_indices=(0, 1, 2, 3)),
            neck=dict(in_channels={DIMS!r}))
        ''',
    'mmseg': f'''
        _base_ = ['mmseg::_base_/models/upernet_r50.py']
        custom_imports = dict(imports=['mmmsvmamba'], allow_failed_imports=False)
        default_scope = 'mmseg'
        norm_cfg = dict(type='BN', requires_grad=True)  # one process: no SyncBN
        model = dict(
            data_preprocessor=dict(size=(64, 64)),  # the crop size, as every mmseg config sets it
            pretrained=None,
            backbone=dict(_delete_=True, type='MSVMamba', arch={ARCH!r}, out_indices=(0, 1, 2, 3)),
            decode_head=dict(in_channels={DIMS!r}, channels=32, num_classes=4, norm_cfg=norm_cfg),
            auxiliary_head=dict(in_channels={DIMS[2]}, channels=16, num_classes=4, norm_cfg=norm_cfg))
        ''',
    'mmpretrain': f'''
        _base_ = ['mmpretrain::_base_/models/resnet50.py']
        custom_imports = dict(imports=['mmmsvmamba'], allow_failed_imports=False)
        default_scope = 'mmpretrain'
        model = dict(
            backbone=dict(_delete_=True, type='MSVMamba', arch={ARCH!r}, out_indices=(3, )),
            head=dict(in_channels={DIMS[3]}, num_classes=10))
        ''',
}


def _batch(scope: str) -> dict:
    """Two 64x64 images with targets, as the data loader hands them to ``train_step``."""
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        return demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2, num_items=[3, 2], num_classes=80,
                              with_mask=True)
    images = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)]
    if scope == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        samples = []
        for _ in range(2):
            sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
            sample.gt_sem_seg = PixelData(data=torch.randint(0, 4, (1, 64, 64)))
            samples.append(sample)
        return dict(inputs=images, data_samples=samples)
    from mmpretrain.structures import DataSample
    return dict(inputs=images, data_samples=[DataSample().set_gt_label(label) for label in (3, 7)])


@pytest.mark.parametrize('scope', list(CONFIGS))
def test_config_on_the_librarys_own_base_trains_a_step(scope, tmp_path, request):
    if importlib.util.find_spec(scope) is None:
        pytest.skip(f'{scope} is not installed')
    if not scope_prefix_resolves(scope):
        # strict: the day the stack resolves it, this fails and mmmsvmamba.stacks must be updated
        reason = f'{STACK} stack: mmengine cannot resolve `{scope}::` bases (mmmsvmamba.stacks)'
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    from mmmsvmamba.engine.config import build_model, config_scope, load_config
    path = tmp_path / f'my_{scope}_config.py'
    path.write_text(textwrap.dedent(CONFIGS[scope]))
    cfg = load_config(str(path))
    assert cfg.model.backbone == dict(type='MSVMamba', arch=ARCH, out_indices=cfg.model.backbone.out_indices)
    model = build_model(cfg)
    model.init_weights()
    model.train()
    with config_scope(scope):
        data = model.data_preprocessor(_batch(scope), training=True)
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [name for name, p in model.backbone.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'backbone parameters without a gradient: {missing[:5]}'
