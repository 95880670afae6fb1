# Mask R-CNN + FPN, MSVMamba-N (v1 Nano) backbone, COCO 2017, 3x schedule with multi-scale + crop training.
_base_ = './_base_/mask_rcnn_msvmamba_fpn_3x_coco.py'

model = dict(
    backbone=dict(
        arch='nano',
        drop_path_rate=0.2,
        # The authors publish the v1 ImageNet-1k weights only as a Google Drive folder (README of
        # github.com/YuHengsss/MSVMamba, branch master): download the nano checkpoint to this path, or set
        # --cfg-options model.backbone.init_cfg.checkpoint=PATH. A missing file stops training with an error
        # rather than training from random weights.
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/msvmamba_nano_in1k.pth')),
    neck=dict(in_channels=[48, 96, 192, 384]))
