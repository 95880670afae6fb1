# UperNet + auxiliary FCN head, ADE20K, 512x512 crops, 160k iterations: everything but the backbone arch.
_base_ = [
    './models/upernet_msvmamba.py', './datasets/ade20k.py', './schedules/upernet_160k.py',
    './default_runtime_seg.py'
]
# pad every training batch to the crop size
model = dict(data_preprocessor=dict(size=(512, 512)))
