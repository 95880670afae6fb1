# Mask R-CNN + FPN, MSVMamba-B (v3) backbone, COCO 2017, 3x schedule with multi-scale + crop training.
_base_ = './_base_/mask_rcnn_msvmamba_fpn_3x_coco.py'

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.2,
        # ImageNet-1k weights released by the authors on Hugging Face (downloaded once, then cached)
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/YuhengSSS/MSVMamba/resolve/main/msvmambav3_base_224.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
