# 1x schedule of the official MSVMamba / Swin Mask R-CNN recipe: 12 epochs, 16 images per iteration
# (2 per GPU x 8 GPUs), AdamW lr 1e-4, linear warmup over 1000 iterations from 0.001x, x0.1 at epochs 8 and 11.
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    # no weight decay on the weights and biases of normalisation layers (every LayerNorm of the backbone)
    paramwise_cfg=dict(norm_decay_mult=0.0))
# the lr above is for 16 images per iteration; `tools/train.py --auto-scale-lr` rescales it for other totals
auto_scale_lr = dict(enable=False, base_batch_size=16)
