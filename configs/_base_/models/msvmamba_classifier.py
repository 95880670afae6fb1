# ImageNet-1k classifier (mmpretrain 1.x): MSVMamba backbone -> global average pooling -> linear head.
# The backbone's outnorm3 plays the official final norm (classifier.norm), so the parameter count equals the
# official classifier's; the leaf configs set the arch, its drop_path_rate and the head's in_channels.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='MSVMamba', arch='tiny', out_indices=(3, ), drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0)),
    # mixup 0.8 / cutmix 1.0, one of the two per batch (the official timm Mixup with switch prob 0.5)
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
