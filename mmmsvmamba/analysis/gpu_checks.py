"""The GPU report's correctness checks of the whole model on a CUDA device (``tools/gpu_report.py --check NAME``).

* ``fixture``: the official equivalence fixture (tests/data/official/msvmamba_v3_tiny_d1111_w24.pt, a v3 network
  with one block per stage; (2,3,64,64) and (1,3,72,104) images) on the device in strict float32 (TF32 off): the
  four backbone outputs (B, C, H/4..H/32, W/4..W/32) and the (B, 1000) logits against the official ones.
* ``cuda-vs-cpu``: MSVMamba-T logits (2, 1000) of (2,3,224,224) images and every parameter gradient of a
  cross-entropy loss, CUDA kernels against the CPU kernels, float32, TF32 off.
* ``amp``: AMP float16 (with a GradScaler) and bfloat16 training of MSVMamba-T on one fixed batch (8,3,224,224)
  for :data:`AMP_STEPS` AdamW steps: every loss finite and the last loss below half the first.

Each check returns a dict of the figures it compared and raises AssertionError naming the first failure.
"""
import os
import tempfile
from collections import OrderedDict
from typing import Dict

import torch
import torch.nn.functional as F

from ..models import ImageNetClassifier, MSVMamba, load_weights
from ..ops import use_backend

# the fixture's arch (tests/data/official/README.md): v3 with one block per stage, widths 24..192
FIXTURE_ARCH = dict(version='v3', dims=24, depths=[1, 1, 1, 1], ssm_ratio=1.0, ffn_ratio=4, gate=False)
FIXTURE_TOLERANCE = 1e-4  # the fixture README's: a correct implementation lands within about 1e-5
AMP_STEPS = 30


def strict_fp32():
    """TF32 off for matmul and cuDNN (the process runs one check, so the setting is not restored)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _max_error(ours: torch.Tensor, official: torch.Tensor) -> float:
    assert ours.shape == official.shape, f'shape {tuple(ours.shape)} != official {tuple(official.shape)}'
    return (ours.float().cpu() - official.float()).abs().max().item()


def fixture_equivalence(path: str, device: str = 'cuda') -> Dict[str, float]:
    """Max absolute error of each backbone output and of the logits, both fixture inputs, on ``device``."""
    strict_fp32()
    data = torch.load(path, weights_only=True)
    backbone_state = OrderedDict((k, v) for k, v in data['state_dict'].items() if not k.startswith('classifier.'))
    backbone_state.update(data['backbone']['outnorm_state_dict'])
    backbone, classifier = MSVMamba(FIXTURE_ARCH), ImageNetClassifier(FIXTURE_ARCH)
    with tempfile.TemporaryDirectory() as folder:  # loaded as users load weights: from files
        for model, state in ((backbone, backbone_state), (classifier, data['state_dict'])):
            torch.save(state, os.path.join(folder, 'weights.pth'))
            load_weights(model, os.path.join(folder, 'weights.pth'))
    errors = {}
    with torch.no_grad(), use_backend('compiled'):
        for suffix in ('', '_nonsquare'):
            images = data['input' + suffix].to(device)
            outputs = backbone.to(device).eval()(images)
            for i, (ours, official) in enumerate(zip(outputs, data['backbone']['outputs' + suffix], strict=True)):
                errors[f'stage{i}{suffix}'] = _max_error(ours, official)
            errors['logits' + suffix] = _max_error(classifier.to(device).eval()(images), data['logits' + suffix])
    worst = max(errors, key=errors.get)
    assert errors[worst] <= FIXTURE_TOLERANCE, f'{worst}: max error {errors[worst]:.3g} > {FIXTURE_TOLERANCE}'
    return errors


def _logits_and_grads(model, images, labels, backend: str):
    model.zero_grad(set_to_none=True)
    with use_backend(backend):
        logits = model(images)
    F.cross_entropy(logits, labels).backward()
    return logits.detach().cpu(), {n: p.grad.detach().cpu() for n, p in model.named_parameters()}


def cuda_vs_cpu(arch: str = 'tiny', batch: int = 2, size: int = 224) -> Dict[str, float]:
    """Max absolute error of the logits, and the worst parameter gradient's max error relative to its scale."""
    strict_fp32()
    torch.manual_seed(0)
    model = ImageNetClassifier(arch).eval()  # no stochastic depth: both devices must run the same network
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, 1000, (batch, ))
    cpu_logits, cpu_grads = _logits_and_grads(model, images, labels, 'compiled')
    model.cuda()
    cuda_logits, cuda_grads = _logits_and_grads(model, images.cuda(), labels.cuda(), 'compiled')
    relative = {n: (cuda_grads[n] - g).abs().max().item() / max(g.abs().max().item(), 1e-12)
                for n, g in cpu_grads.items()}
    worst = max(relative, key=relative.get)
    result = dict(logits=_max_error(cuda_logits, cpu_logits), worst_grad=worst, worst_grad_rel=relative[worst],
                  n_grads=len(relative))
    assert result['logits'] <= 1e-3, f"logits differ by {result['logits']:.3g}"
    assert relative[worst] <= 1e-3, f'gradient of {worst} differs by {relative[worst]:.3g} of its scale'
    return result


def amp_training(dtype: str, arch: str = 'tiny', batch: int = 8, steps: int = AMP_STEPS) -> Dict[str, float]:
    """First and last loss of ``steps`` AMP training steps on one fixed batch (``dtype`` 'float16'/'bfloat16')."""
    torch.manual_seed(0)
    model = ImageNetClassifier(arch).cuda().train()
    images, labels = torch.randn(batch, 3, 224, 224, device='cuda'), torch.randint(0, 1000, (batch, ), device='cuda')
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler('cuda', enabled=dtype == 'float16')
    losses = []
    for _ in range(steps):
        with torch.autocast('cuda', dtype=getattr(torch, dtype)), use_backend('compiled'):
            loss = F.cross_entropy(model(images), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    assert all(map(torch.isfinite, torch.tensor(losses))), f'non-finite losses: {losses}'
    assert losses[-1] < 0.5 * losses[0], f'not learning: loss {losses[0]:.3f} -> {losses[-1]:.3f}'
    return dict(first_loss=losses[0], last_loss=losses[-1], steps=steps)
