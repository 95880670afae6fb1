"""MSVMamba backbone: the official numbers (params, keys, fixture outputs), the spec reference
(tests/models/spec_reference.py) for every version/gate combination, and the mmdet/mmseg conventions (out_indices,
frozen_stages, norm_eval, with_cp, errors)."""
from collections import OrderedDict

import pytest
import torch

from mmmsvmamba import MSVMamba
from tests.models.spec_reference import expected_stage_sizes, reference_backbone
from tests.official import ARCH_TO_FACTS, FIXTURE_ARCH, facts, load_fixture, read_key_list


@pytest.fixture(scope='module')
def fixture_data():
    return load_fixture()


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('arch', list(ARCH_TO_FACTS))
def test_parameter_count_matches_official_wrapper(arch):
    model = MSVMamba(arch)
    assert n_params(model) == facts(arch)['params_mm_backbone_with_outnorms']


@pytest.mark.parametrize('arch', list(ARCH_TO_FACTS))
def test_bare_backbone_count_and_aliases(arch):
    """Without out norms but one, the count is the official bare backbone plus that norm."""
    model = MSVMamba(arch, out_indices=(3, ))
    expected = facts(arch)['params_without_classifier'] + 2 * model.dims[3]
    assert n_params(model) == expected
    alias = dict(nano='n', micro='m', tiny_v1='t_v1', tiny='t', small='s', base='b')[arch]
    assert MSVMamba.parse_arch(alias) == MSVMamba.parse_arch(arch.upper())


@pytest.mark.parametrize('arch, key_file, extra_file', [
    ('tiny', 'official_v3_tiny_keys.txt', 'official_v3_tiny_mmbackbone_extra_keys.txt'),
    ('tiny_v1', 'official_v1_tiny_keys.txt', 'official_v1_tiny_mmbackbone_extra_keys.txt'),
])
def test_state_dict_keys_and_shapes_are_official(arch, key_file, extra_file):
    official = read_key_list(key_file)
    extra = read_key_list(extra_file)
    expected = {k: v for k, v in official.items() if not k.startswith('classifier.')}
    expected.update({k: v for k, v in extra.items() if k.startswith('outnorm')})
    ours = {k: tuple(v.shape) for k, v in MSVMamba(arch).state_dict().items()}
    assert ours == expected


@pytest.mark.parametrize('arch', ['small', 'base', 'nano', 'micro'])
def test_state_dict_key_counts(arch):
    keys = MSVMamba(arch).state_dict().keys()
    # official classification model keys, minus classifier norm/head (4), plus 4 outnorms x 2
    assert len(keys) == facts(arch)['n_state_dict_keys'] - 4 + 8


def load_fixture_backbone(data, **kwargs):
    model = MSVMamba(FIXTURE_ARCH, **kwargs)
    state_dict = OrderedDict((k, v) for k, v in data['state_dict'].items() if not k.startswith('classifier.'))
    state_dict.update(data['backbone']['outnorm_state_dict'])
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


@pytest.mark.parametrize('inputs, outputs', [('input', 'outputs'), ('input_nonsquare', 'outputs_nonsquare')])
def test_official_fixture_outputs(fixture_data, inputs, outputs):
    model = load_fixture_backbone(fixture_data)
    with torch.no_grad():
        ours = model(fixture_data[inputs])
    for mine, official in zip(ours, fixture_data['backbone'][outputs], strict=True):
        assert mine.shape == official.shape
        torch.testing.assert_close(mine, official, atol=1e-4, rtol=1e-4)


def perturbed(model, seed=0):
    """Official init plus noise, so that no parameter is trivially 0 or 1 (as the fixture does)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.mark.parametrize('version', ['v1', 'v3'])
@pytest.mark.parametrize('gate', [False, True])
def test_every_version_and_gate_matches_the_spec(version, gate):
    arch = dict(version=version, dims=16, depths=[1, 2, 1, 1], ssm_ratio=2.0 if version == 'v1' else 1.0,
                ffn_ratio=2 if version == 'v1' else 4, gate=gate)
    model = perturbed(MSVMamba(arch))
    x = torch.randn(2, 3, 45, 70)  # odd sizes: ceil/floor rules and non-integer upsampling
    with torch.no_grad():
        ours = model(x)
        reference = reference_backbone(model.state_dict(), x, version, gate, arch['depths'])
    assert [tuple(o.shape[-2:]) for o in ours] == expected_stage_sizes(45, 70, version)
    for mine, ref in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('version', ['v1', 'v3'])
@pytest.mark.parametrize('size', [(64, 64), (33, 50), (17, 95)])
def test_output_shapes_any_size(version, size):
    arch = dict(FIXTURE_ARCH, version=version)
    model = MSVMamba(arch).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert [tuple(o.shape) for o in outs] == [(1, 24 * 2**i) + hw
                                              for i, hw in enumerate(expected_stage_sizes(*size, version))]
    assert all(o.is_contiguous() for o in outs)


@pytest.mark.parametrize('version', ['v1', 'v3'])
def test_activations_and_conv_weights_stay_channels_last(version):
    """The CPU speed rests on channels-last memory throughout (docs/architecture.md, "Memory layout"): a change
    that silently falls back to (B, C, H, W) memory keeps the numbers but makes every block reorder its data."""
    arch = dict(FIXTURE_ARCH, version=version)
    model = MSVMamba(arch).eval()
    model.load_state_dict({k: v.contiguous() for k, v in MSVMamba(arch).state_dict().items()})  # as from a file
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    seen = []

    def record(module, args, output):
        # v1's MS2D returns (B, H, W, C) tensors; everything else (B, C, H, W)-shaped ones
        channels_innermost = output if getattr(module, 'channels_last', False) else output.permute(0, 2, 3, 1)
        seen.append((type(module).__name__, channels_innermost.is_contiguous()))

    for module in model.modules():
        if type(module).__name__ in ('ConvFFN', 'MS2D') or isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(record)
    with torch.no_grad():
        model(torch.randn(1, 3, 40, 56))
    assert seen and [name for name, channels_last in seen if not channels_last] == []


@pytest.mark.parametrize('out_indices', [(0, ), (1, 3), (2, ), (0, 1, 2, 3), (-1, )])
def test_out_indices_subset(fixture_data, out_indices):
    full = load_fixture_backbone(fixture_data)
    model = MSVMamba(FIXTURE_ARCH, out_indices=out_indices).eval()
    model.load_state_dict(full.state_dict(), strict=False)
    with torch.no_grad():
        outs = model(fixture_data['input'])
        all_outs = full(fixture_data['input'])
    wanted = sorted(i % 4 for i in out_indices)
    assert sorted(k[len('outnorm'):-len('.weight')] for k in model.state_dict() if k.startswith('outnorm')
                  and k.endswith('weight')) == [str(i) for i in wanted]
    for out, i in zip(outs, wanted, strict=True):
        torch.testing.assert_close(out, all_outs[i])


def test_frozen_stages_stay_frozen_across_train():
    model = MSVMamba(FIXTURE_ARCH, frozen_stages=2)
    model.train()
    frozen = [model.patch_embed, model.layers[0], model.layers[1], model.outnorm0, model.outnorm1]
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    for module in [model.layers[2], model.layers[3], model.outnorm2]:
        assert module.training
        assert all(p.requires_grad for p in module.parameters())
    out = model(torch.randn(1, 3, 32, 32))
    sum(o.sum() for o in out).backward()
    assert model.patch_embed[0].weight.grad is None
    assert model.layers[2].blocks[0].op.x_proj_weight.grad is not None


def test_frozen_stem_only():
    model = MSVMamba(FIXTURE_ARCH, frozen_stages=0).train()
    assert not model.patch_embed.training and model.layers[0].training
    assert all(p.requires_grad for p in model.layers[0].parameters())


def test_norm_eval_keeps_norms_in_eval_mode():
    model = MSVMamba(FIXTURE_ARCH, norm_eval=True).train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(not m.training for m in norms)
    assert model.layers[0].blocks[0].op.conv2d.training


def test_with_cp_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = perturbed(MSVMamba(FIXTURE_ARCH)).train()
    ckpt = MSVMamba(FIXTURE_ARCH, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 40, 40)
    grads = []
    for model in (plain, ckpt):
        loss = sum((o * torch.linspace(0, 1, o.numel()).view_as(o)).sum() for o in model(x))
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_every_parameter_gets_a_gradient():
    model = MSVMamba(dict(FIXTURE_ARCH, gate=True)).train()
    # a weighted sum: the plain mean of a LayerNorm output has zero gradient with unit norm weights
    sum((o * torch.randn_like(o)).sum() for o in model(torch.randn(1, 3, 32, 32))).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not no_grad


def test_drop_path_rates_follow_linspace():
    model = MSVMamba('tiny')
    rates = [block.drop_path.drop_prob for layer in model.layers for block in layer.blocks]
    assert rates == pytest.approx(torch.linspace(0, 0.2, 15).tolist())
    assert MSVMamba('base', drop_path_rate=0.3).layers[3].blocks[1].drop_path.drop_prob == pytest.approx(0.3)


def test_official_init():
    model = MSVMamba(FIXTURE_ARCH)
    op = model.layers[0].blocks[0].op
    assert torch.all(op.A_logs == 0) and torch.all(op.Ds == 1)
    dt = torch.nn.functional.softplus(op.dt_projs_bias)
    assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6
    assert op.in_proj.weight.abs().max() <= 2.0 and 0.01 < op.in_proj.weight.std() < 0.03
    assert op.dt_projs_weight.abs().max() <= op.dt_rank**-0.5


@pytest.mark.parametrize('arch, message', [
    ('huge', r"unknown MSVMamba arch 'huge'; choose one of \[.*'tiny'"),
    (dict(version='v2', dims=24, depths=[1, 1, 1, 1], ssm_ratio=1, ffn_ratio=4, gate=False), r"'version'"),
    (dict(version='v3', dims=24, depths=[1, 1, 1], ssm_ratio=1, ffn_ratio=4, gate=False), r"'depths'.*4"),
    (dict(version='v3', dims=24, depths=[1, 1, 1, 1], ssm_ratio=1, ffn_ratio=4), r"missing \['gate'\]"),
    (dict(FIXTURE_ARCH, window_size=7), r"unknown \['window_size'\]"),
    (dict(FIXTURE_ARCH, dims=[24, 48]), r"'dims'"),
    (dict(FIXTURE_ARCH, gate='yes'), r"'gate'.*bool"),
    (dict(FIXTURE_ARCH, ssm_ratio=-1), r"'ssm_ratio'"),
])
def test_bad_arch_errors(arch, message):
    with pytest.raises(ValueError, match=message):
        MSVMamba(arch)


@pytest.mark.parametrize('kwargs, message', [
    (dict(out_indices=(0, 4)), r'out_indices values must be ints in \[0, 3\].*4'),
    (dict(out_indices=()), r'non-empty'),
    (dict(out_indices=(1, 1)), r'repeated'),
    (dict(frozen_stages=5), r'frozen_stages'),
    (dict(drop_path_rate=1.5), r'drop_path_rate'),
    (dict(init_cfg=dict(type='Kaiming')), r"type='Pretrained'"),
])
def test_bad_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MSVMamba(FIXTURE_ARCH, **kwargs)


@pytest.mark.parametrize('x, message', [
    (torch.randn(3, 32, 32), r'4-D float tensor'),
    (torch.randint(0, 255, (1, 3, 32, 32)), r'4-D float tensor'),
    (torch.randn(1, 1, 32, 32), r'3 input channels.*got 1'),
    (torch.randn(1, 32, 32, 3), r'3 input channels.*permute'),
])
def test_bad_input_errors(x, message):
    with pytest.raises(ValueError, match=message):
        MSVMamba(FIXTURE_ARCH)(x)
