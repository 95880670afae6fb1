# Demo: Mask R-CNN with a small MSVMamba backbone trained from scratch on the synthetic shape dataset
# (tools/make_demo_data.py: 4 classes, occlusion, scale changes, some images without objects), small enough to
# learn on 2 CPU cores in a few minutes. `make demo` runs it through tools/demo.py: the model is evaluated
# before training (ValidateBeforeTrainHook) and after, and its predictions are drawn into image files.
# The detector of configs/mask_rcnn_msvmamba_*_1x.py, narrowed (FPN/heads 64 channels, fewer RoIs) for a CPU.
_base_ = [
    '../_base_/models/mask_rcnn_msvmamba_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/default_runtime_det.py'
]

classes = ('circle', 'square', 'triangle', 'cross')
palette = [(220, 20, 60), (0, 128, 255), (255, 160, 0), (60, 180, 75)]
width = 64  # channels of the FPN and the heads (256 in the COCO configs)
# trained from scratch: group norm in the FPN and the mask head speeds up learning (as in mmdet's scratch configs)
gn = dict(type='GN', num_groups=16, requires_grad=True)

model = dict(
    backbone=dict(
        # a narrow, shallow v3 MSVMamba (the blocks of Tiny/Small/Base): 1.2M parameters, about 5x faster on a
        # CPU than Nano, so that training from scratch shows results within minutes
        arch=dict(_delete_=True, version='v3', dims=32, depths=(1, 1, 3, 1), ssm_ratio=1.0, ffn_ratio=2.0,
                  gate=False),
        drop_path_rate=0.1,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width, norm_cfg=gn),
    rpn_head=dict(
        in_channels=width,
        feat_channels=width,
        # objects are 10-70 pixels: anchors of 16-256 pixels instead of COCO's 32-512
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(
            num_convs=2, in_channels=width, conv_out_channels=width, num_classes=len(classes), norm_cfg=gn)),
    # at most 5 objects per image: 100 proposals and 64 sampled RoIs per image are plenty (COCO: 1000 and 512)
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100), rcnn=dict(max_per_img=50)))

# the COCO data settings of ../_base_/datasets/coco_instance.py, pointed at the generated set
data_root = 'data/demo/coco/'
metainfo = dict(classes=classes, palette=palette)
# the generated images are 112-192 pixels a side: keep them at full resolution, small shapes are 10 pixels
image_scale = (192, 192)
train_pipeline = [
    dict(type='StrictLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    # main-process loading: no worker start-up cost per epoch on 2 cores, and exact resume (see RNGStateHook)
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        # keep the images without objects: they are trained on as pure background
        filter_cfg=dict(_delete_=True, filter_empty_gt=False),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# a short run from scratch: warm up, then anneal the learning rate to nearly zero (a constant 1e-3 plateaus)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0))

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=1, max_keep_ckpts=2))
custom_hooks = [dict(type='RNGStateHook'), dict(type='ValidateBeforeTrainHook')]
log_processor = dict(window_size=10)
randomness = dict(seed=0)
