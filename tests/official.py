"""The official facts the tests check the code against (tests/data/official/, copied from the steering repo's
spec): counted parameters, FLOPs and key lists of the six released models, and the official fixture outputs; and
checkpoints written in the official layout."""
import json
import re
import sys
import types
from collections import OrderedDict
from pathlib import Path

import torch

OFFICIAL = Path(__file__).parent / 'data' / 'official'
FACTS = json.loads((OFFICIAL / 'official_facts.json').read_text())['variants']
# our arch names -> the official variant names of official_facts.json
ARCH_TO_FACTS = dict(nano='v1_nano', micro='v1_micro', tiny_v1='v1_tiny', tiny='v3_tiny', small='v3_small',
                     base='v3_base')
# the arch of the official fixture (tests/data/official/README.md): a v3 network with one block per stage
FIXTURE_ARCH = dict(version='v3', dims=24, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=4, gate=False)


def facts(arch: str) -> dict:
    """The official facts of one of our archs (long name)."""
    return FACTS[ARCH_TO_FACTS[arch]]


def read_key_list(name: str) -> OrderedDict:
    """An official key list file: key -> shape tuple."""
    keys = OrderedDict()
    for line in (OFFICIAL / name).read_text().splitlines():
        if line and not line.startswith('#'):
            key, shape = line.split('\t')[:2]
            keys[key] = tuple(int(s) for s in re.findall(r'\d+', shape))
    return keys


def load_fixture() -> dict:
    """The official forward outputs of FIXTURE_ARCH for fixed weights and inputs (see the README beside it)."""
    return torch.load(OFFICIAL / 'msvmamba_v3_tiny_d1111_w24.pt', weights_only=True)


def official_classifier_state_dict(arch=FIXTURE_ARCH, seed: int = 0, num_classes: int = 10) -> OrderedDict:
    """A state dict in the official classification layout (backbone keys + classifier.norm/head), random values."""
    from mmmsvmamba import MSVMamba
    torch.manual_seed(seed)
    model = MSVMamba(arch, out_indices=(3, ))
    state = OrderedDict((k, v + 0.01 * torch.randn_like(v)) for k, v in model.state_dict().items()
                        if not k.startswith('outnorm'))
    width = model.dims[3]
    state.update({'classifier.norm.weight': torch.rand(width), 'classifier.norm.bias': torch.rand(width),
                  'classifier.head.weight': torch.rand(num_classes, width),
                  'classifier.head.bias': torch.rand(num_classes)})
    return state


def save_with_foreign_class(path, payload, module_name: str, class_name: str, cls_body: tuple):
    """Pickle ``payload(cls)`` with a class that exists only while saving (like yacs.config.CfgNode, which the
    official training files pickle): ``cls_body`` is ``(bases, namespace)``."""
    parts = module_name.split('.')
    names = ['.'.join(parts[:i + 1]) for i in range(len(parts))]
    modules = {name: types.ModuleType(name) for name in names}
    cls = type(class_name, cls_body[0], dict(cls_body[1], __module__=module_name))
    setattr(modules[module_name], class_name, cls)
    for parent, child in zip(names, names[1:]):
        setattr(modules[parent], child.rsplit('.', 1)[1], modules[child])
    sys.modules.update(modules)
    try:
        torch.save(payload(cls), path)
    finally:
        for name in names:
            del sys.modules[name]


def save_official_training_file(path, state: dict, ema_offset: float = 0.0):
    """An official ImageNet training file: ``model``, ``model_ema`` (``state`` + ``ema_offset``), the yacs config."""
    def payload(cfg_node):
        return {'model': state, 'model_ema': OrderedDict((k, v + ema_offset) for k, v in state.items()),
                'config': cfg_node(MODEL=cfg_node(NAME='msvmambav3_tiny')), 'epoch': 299, 'max_accuracy': 83.0}

    save_with_foreign_class(path, payload, 'yacs.config', 'CfgNode', ((dict, ), {}))
