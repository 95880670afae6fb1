# Runtime shared by the Mask R-CNN configs (mmdet 3.x).
default_scope = 'mmdet'
# mmmsvmamba registers the MSVMamba backbone; .engine the hooks and the checkpoint reader that lets mmengine read
# its own checkpoints under torch >= 2.6; .datasets the strict image loader
custom_imports = dict(imports=['mmmsvmamba', 'mmmsvmamba.engine', 'mmmsvmamba.datasets'],
                      allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
# saves the random generators in checkpoints so that --resume continues exactly where a run stopped
custom_hooks = [dict(type='RNGStateHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when there is no GPU
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
