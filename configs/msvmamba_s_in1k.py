# MSVMamba-S (v3) on ImageNet-1k, 224x224, the official 300-epoch recipe (8 GPUs x 128 images).
_base_ = './_base_/msvmamba_classifier_300e_in1k.py'

model = dict(
    backbone=dict(arch='small', drop_path_rate=0.4),
    head=dict(in_channels=768))
