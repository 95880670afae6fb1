# Demo: UperNet with a small MSVMamba backbone trained from scratch on the synthetic shape dataset in ADE20K
# layout (tools/make_demo_data.py: 4 shape classes, each in its own colour family), small enough to learn on
# 2 CPU cores in a few minutes:
#     python tools/demo.py seg
# The segmentor of configs/upernet_msvmamba_*_160k_ade20k.py, narrowed for a CPU: the detection demo's 1.2M v3
# backbone, heads of 128/64 channels (64/32 learnt the classes one at a time; docs/detection_segmentation.md),
# BN instead of SyncBN so that it also runs in CPU-only distributed mode, 128x128 crops.
_base_ = ['../_base_/models/upernet_msvmamba.py', '../_base_/datasets/ade20k.py', '../_base_/default_runtime_seg.py']

classes = ('background', 'circle', 'square', 'triangle', 'cross')
palette = [[40, 40, 40], [220, 20, 60], [0, 128, 255], [255, 160, 0], [60, 180, 75]]
crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, version='v3', dims=32, depths=(1, 1, 3, 1), ssm_ratio=1.0, ffn_ratio=2.0,
                  gate=False),
        drop_path_rate=0.1,
        init_cfg=None),
    decode_head=dict(
        in_channels=[32, 64, 128, 256], channels=128, num_classes=len(classes), norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=128, channels=64, num_classes=len(classes), norm_cfg=norm_cfg))

# the ADE20K data settings of ../_base_/datasets/ade20k.py, pointed at the generated set
data_root = 'data/demo/ade'
metainfo = dict(classes=classes, palette=palette)
train_pipeline = [
    dict(type='StrictLoadImageFromFile'),
    # label 0 marks unlabeled pixels (a band around every shape), as in ADE20K
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.jpg',
               seg_map_suffix='.png', reduce_zero_label=True)
train_dataloader = dict(
    batch_size=4,
    # one worker: iteration-based resume is only exact when augmentations run in workers (see RNGStateHook)
    num_workers=1,
    dataset=dict(**dataset, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(**dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader
# IoU and accuracy of each class as scalars: tools/demo.py requires every shape class to be learnt
val_evaluator = dict(type='PerClassIoUMetric')
test_evaluator = val_evaluator

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters, by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=2))
custom_hooks = [dict(type='RNGStateHook'), dict(type='ValidateBeforeTrainHook')]
randomness = dict(seed=0)
