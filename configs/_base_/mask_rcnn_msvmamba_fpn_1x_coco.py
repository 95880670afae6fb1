# Mask R-CNN + FPN, COCO 2017, 1x schedule: everything but the backbone arch (see the leaf configs).
_base_ = [
    './models/mask_rcnn_msvmamba_fpn.py', './datasets/coco_instance.py', './schedules/mask_rcnn_1x.py',
    './default_runtime_det.py'
]
