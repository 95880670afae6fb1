# Runtime shared by the ImageNet-1k classification configs (mmpretrain 1.x).
default_scope = 'mmpretrain'
# mmmsvmamba registers the MSVMamba backbone; .engine the hooks and the checkpoint reader that lets mmengine read
# its own checkpoints under torch >= 2.6; .datasets the strict image loader
custom_imports = dict(imports=['mmmsvmamba', 'mmmsvmamba.engine', 'mmmsvmamba.datasets'],
                      allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when there is no GPU
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
