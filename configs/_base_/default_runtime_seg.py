# Runtime shared by the UperNet configs (mmseg 1.x).
default_scope = 'mmseg'
# mmmsvmamba registers the MSVMamba backbone; .engine the hooks and the checkpoint reader that lets mmengine read
# its own checkpoints under torch >= 2.6; .datasets the strict image loader; .evaluation the per-class IoU metric
custom_imports = dict(imports=['mmmsvmamba', 'mmmsvmamba.engine', 'mmmsvmamba.datasets', 'mmmsvmamba.evaluation'],
                      allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=16000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# saves the random generators in checkpoints so that --resume continues exactly where a run stopped
custom_hooks = [dict(type='RNGStateHook')]

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when there is no GPU
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# multi-scale + flip testing (tools/test.py --tta), which gives the mIoU (MS) column of the model zoo
tta_model = dict(type='SegTTAModel')
