# Mask R-CNN + FPN, MSVMamba-S (v3) backbone, COCO 2017, 3x schedule:
# its 1x config trained for 36 epochs with multi-scale + crop augmentation (_base_/mask_rcnn_1x_to_3x.py).
_base_ = ['./mask_rcnn_msvmamba_s_1x.py', './_base_/mask_rcnn_1x_to_3x.py']

train_pipeline = _base_.train_pipeline_3x
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
max_epochs = _base_.max_epochs_3x
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = _base_.param_scheduler_3x
