# The official MSVMamba ImageNet-1k recipe (Swin/VMamba code base): 300 epochs, total batch 1024,
# AdamW lr 1e-3 (= 5e-4 x 1024 / 512), weight decay 0.05, 20 warmup epochs from 1e-6, cosine to 1e-5,
# gradient clipping at norm 5, EMA of the weights with decay 0.9999. The official runs use mixed precision:
# add `--amp` to tools/train.py on GPUs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    # the official optimizer skips decay for 1-D parameters (norms, biases, Ds) and for A_logs
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'.A_logs': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=280, eta_min=1e-5, by_epoch=True, begin=20, end=300,
         convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)
custom_hooks = [
    # saves the random generators in checkpoints so that --resume continues exactly where a run stopped
    dict(type='RNGStateHook'),
    # EMAHook's momentum is 1 - decay
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')
]
