"""Where the model looks: LRP relevance maps with Captum (the book's chapter 5, paper Fig. 2b).

Captum's LRP is easy to get silently wrong, so every call goes through :func:`lrp`, which

1. attributes on an eval-mode copy (in train mode LRP would update BatchNorm statistics),
2. folds every BatchNorm into the conv before it (:func:`canonize`): with BN as its own layer, any
   rule other than LRP-0 makes relevance explode,
3. treats the model's ``Normalize`` as the affine layer it is (LRP-0 on it), so relevance lands on the
   raw [0, 1] pixels: a black background pixel gets exactly zero, where a map on normalised pixels
   puts most of its relevance on the background. Folding the normalisation into the first conv
   instead would be inexact where that conv zero-pads,
4. attaches the rules before every call (Captum 0.9 deletes them after each ``attribute``).

The models of :mod:`natmu_lite.models` are built so that this is exact: LRP-0 (``composite=False``)
equals Input x Gradient on the raw pixels, and with every bias removed the relevance sums to the
logit; the tests check both.
"""

from __future__ import annotations

import copy

import torch
from captum.attr import LRP
from captum.attr._utils.custom_modules import Addition_Module
from captum.attr._utils.lrp_rules import EpsilonRule, GammaRule, PropagationRule
from torch import Tensor, nn

from .methods.natmu import per_channel
from .models import Normalize


@torch.no_grad()
def canonize(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with each BatchNorm folded into the conv registered just before it.

    The BN module stays (as an exact identity) so the module tree and state-dict keys do not change;
    the logits are unchanged up to float rounding."""
    model = copy.deepcopy(model).eval()
    last_conv = None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            last_conv = module
        elif isinstance(module, nn.BatchNorm2d):
            if last_conv is None or last_conv.out_channels != module.num_features:
                raise ValueError(f"cannot fold {module}: no preceding conv with {module.num_features} outputs")
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            bias = last_conv.bias if last_conv.bias is not None else torch.zeros_like(module.running_mean)
            last_conv.weight.mul_(scale.view(-1, 1, 1, 1))
            last_conv.bias = nn.Parameter((bias - module.running_mean) * scale + module.bias)
            module.weight.fill_(1)
            module.bias.zero_()
            module.running_mean.zero_()
            module.running_var.fill_(1 - module.eps)
            last_conv = None
    return model


def attach_rules(model: nn.Module, composite: bool = True) -> None:
    """Give every layer its LRP rule (again: Captum 0.9 deletes them after each call).

    ``composite=False`` is LRP-0 everywhere. ``composite=True`` is the usual composite for image CNNs:
    LRP-gamma (0.25) on the lower two thirds of the convs (favours positive evidence), LRP-epsilon
    (0.01; Captum's epsilon is absolute, 0.25 would swallow most relevance in these small nets) on
    the upper convs and the skip additions, LRP-0 on the linear head and the input normalisation."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    lower = set(map(id, convs[: round(len(convs) * 2 / 3)]))
    for module in model.modules():
        rule: PropagationRule | None = None
        if isinstance(module, (Normalize, nn.Linear, nn.BatchNorm2d)) or not composite:
            rule = EpsilonRule()
        elif isinstance(module, nn.Conv2d):
            rule = GammaRule(0.25) if id(module) in lower else EpsilonRule(0.01)
        elif isinstance(module, Addition_Module):
            rule = EpsilonRule(0.01)
        if rule is not None and not list(module.children()):
            module.rule = rule


def lrp(model: nn.Module, images: Tensor, targets: Tensor | int, *, composite: bool = True,
        batch_size: int = 64) -> Tensor:
    """Relevance of each raw input pixel for the logit of ``targets`` (on the CPU, NCHW).

    ``images`` are uint8 [0, 255] or float [0, 1]; the model itself is not touched (a canonized copy
    on its device is attributed, in the model's dtype: float32 normally, float64 in the exactness
    tests, where near-zero activations would otherwise amplify float32 rounding)."""
    weight = next(model.parameters())
    explained = canonize(model)
    x = images.float().div(255) if images.dtype == torch.uint8 else images
    x = x.to(weight.dtype)
    t = torch.as_tensor(targets)
    t = t.expand(len(x)) if t.dim() == 0 else t
    if len(t) != len(x):
        raise ValueError(f"{len(x)} images but {len(t)} targets")
    out = []
    for xb, tb in zip(x.split(batch_size), t.split(batch_size)):
        attach_rules(explained, composite)
        out.append(LRP(explained).attribute(xb.to(weight.device).requires_grad_(), target=tb.to(weight.device))
                   .detach().cpu())
    return torch.cat(out) if out else torch.empty(0)


def relevance_maps(relevance: Tensor, quantile: float = 0.99) -> Tensor:
    """Per-pixel relevance (N, H, W) for display: summed over channels, divided by the ``quantile`` of
    each map's absolute relevance and clipped to [-1, 1], so a handful of extreme pixels do not wash out the rest."""
    maps = relevance.sum(1)
    scale = maps.flatten(1).abs().quantile(quantile, dim=1).clamp_min(1e-12)
    return (maps / scale[:, None, None]).clamp(-1, 1)


def retain_share(relevance: Tensor, forget_x: Tensor, retain_x: Tensor, masks: Tensor) -> Tensor:
    """For each hybrid ``x_f * m + x_r * (1 - m)``: the share of its positive relevance that lies on
    the remaining image's part (the paper's "attention shifted to the remaining information").

    Each pixel's relevance is split between the two images in proportion to what each put into the
    pixel, ``m * x_f`` against ``(1 - m) * x_r``; black pixels carry no relevance on raw-pixel input."""
    m = per_channel(masks)
    from_forget, from_retain = forget_x.float() * m, retain_x.float() * (1 - m)
    weight = (from_retain / (from_forget + from_retain).clamp_min(1e-6)).mean(1)
    positive = relevance.sum(1).clamp_min(0)
    return (positive * weight).flatten(1).sum(1) / positive.flatten(1).sum(1).clamp_min(1e-12)
