"""The official facts the tests check the code against (tests/data/official/, copied from the steering repo's
spec): counted parameters, FLOPs and key lists of the six released models, and the official fixture outputs."""
import json
import re
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
