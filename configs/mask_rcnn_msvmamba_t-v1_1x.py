# Mask R-CNN + FPN, MSVMamba-T v1 (the arXiv-v1 Tiny) backbone, COCO 2017, 1x schedule.
_base_ = './_base_/mask_rcnn_msvmamba_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='tiny_v1',
        drop_path_rate=0.2,
        # The authors publish the v1 ImageNet-1k weights only as a Google Drive folder (README of
        # github.com/YuHengsss/MSVMamba, branch master): download the tiny_v1 checkpoint to this path, or set
        # --cfg-options model.backbone.init_cfg.checkpoint=PATH. A missing file stops training with an error
        # rather than training from random weights.
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/msvmamba_tiny_v1_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
