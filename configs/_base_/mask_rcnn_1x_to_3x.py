# What turns a Mask R-CNN 1x config into its 3x config: 36 epochs (x0.1 at 27 and 33) with the Swin/ConvNeXt
# multi-scale training pipeline: short side 480-800, or a 400-600 resize + random 384-600 crop then short side
# 480-800. A 3x leaf inherits its 1x leaf and this file, and takes the values below over the 1x ones; they carry a
# _3x suffix because mmengine does not let two bases of one config define the same name.
multi_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333), (640, 1333), (672, 1333),
                (704, 1333), (736, 1333), (768, 1333), (800, 1333)]
train_pipeline_3x = [
    dict(type='StrictLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)], keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600), allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True)
            ],
        ]),
    dict(type='PackDetInputs')
]
max_epochs_3x = 36
param_scheduler_3x = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs_3x, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
