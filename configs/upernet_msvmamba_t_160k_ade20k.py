# UperNet + auxiliary FCN head, MSVMamba-T (v3) backbone, ADE20K 512x512, 160k iterations.
_base_ = './_base_/upernet_msvmamba_160k_ade20k.py'

model = dict(
    backbone=dict(
        arch='tiny',
        drop_path_rate=0.2,
        # ImageNet-1k weights released by the authors on Hugging Face (downloaded once, then cached)
        init_cfg=dict(type='Pretrained', checkpoint='https://huggingface.co/YuhengSSS/MSVMamba/resolve/main/msvmambav3_tiny_224.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
