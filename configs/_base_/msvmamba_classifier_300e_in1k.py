# ImageNet-1k classification with the official recipe: everything but the backbone arch.
_base_ = [
    './models/msvmamba_classifier.py', './datasets/imagenet_in1k.py', './schedules/imagenet_300e.py',
    './default_runtime_cls.py'
]
