# Mask R-CNN + FPN, MSVMamba-S (v3) backbone, COCO 2017, 1x schedule.
_base_ = './_base_/mask_rcnn_msvmamba_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.2,
        # ImageNet-1k weights released by the authors on Hugging Face (downloaded once, then cached)
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/YuhengSSS/MSVMamba/resolve/main/msvmambav3_small_224.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
