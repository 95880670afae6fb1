# UperNet + auxiliary FCN head, MSVMamba-M (v1 Micro) backbone, ADE20K 512x512, 160k iterations.
_base_ = './_base_/upernet_msvmamba_160k_ade20k.py'

model = dict(
    backbone=dict(
        arch='micro',
        drop_path_rate=0.3,
        # The authors publish the v1 ImageNet-1k weights only as a Google Drive folder (README of
        # github.com/YuHengsss/MSVMamba, branch master): download the micro checkpoint to this path, or set
        # --cfg-options model.backbone.init_cfg.checkpoint=PATH. A missing file stops training with an error
        # rather than training from random weights.
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/msvmamba_micro_in1k.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
