"""LRP through Captum: exact on the package's models (the cheap checks of the book's LRP chapter)."""

import pytest
import torch
from captum.attr import InputXGradient

from natmu_lite.explain import canonize, lrp, relevance_maps, retain_share
from natmu_lite.models import Normalize, build_model

SHAPES = {"small_cnn": (1, 28), "resnet18": (3, 32), "vgg16_bn": (3, 32)}


def calibrated(name: str) -> torch.nn.Module:
    """A random network whose BatchNorm statistics are not the identity (so folding matters), in
    float64: a random deep network has near-zero activations where float32 rounding, divided by
    LRP's tiny epsilon, would make the exactness checks flaky."""
    c, s = SHAPES[name]
    torch.manual_seed(0)  # one network, not a new random one each run (some have near-zero logits)
    model = build_model(name, 10, c, s, (0.3,), (0.35,))
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, c, s, s) * 0.8)
    return model.eval().double()


def images(name: str, n: int = 3) -> torch.Tensor:
    c, s = SHAPES[name]
    x = torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[:, :, :5] = 0  # a black band, like Fashion-MNIST's background
    return x


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SHAPES))
def test_lrp_zero_equals_input_times_gradient(name):
    model, x, t = calibrated(name), images(name), torch.tensor([1, 4, 7])
    relevance = lrp(model, x, t, composite=False)
    ixg = InputXGradient(model).attribute(x.clone().requires_grad_(), target=t)
    assert (relevance - ixg).abs().max() / ixg.abs().max() < 1e-3
    assert relevance[:, :, :5].abs().max() == 0, "black pixels must get no relevance (raw-pixel input)"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SHAPES))
def test_bias_free_relevance_sums_to_the_logit(name):
    model, x, t = calibrated(name), images(name), torch.tensor([0, 3, 9])
    with torch.no_grad():
        model = canonize(model)
        for module in model.modules():
            if isinstance(module, Normalize):
                module.mean.zero_()
            elif getattr(module, "bias", None) is not None:
                module.bias.zero_()
    relevance = lrp(model, x, t, composite=False)
    logits = model(x)[torch.arange(3), t]
    torch.testing.assert_close(relevance.sum((1, 2, 3)), logits, rtol=1e-2, atol=1e-5)


@pytest.mark.slow
def test_canonize_keeps_logits_and_leaves_the_model_alone():
    model = calibrated("resnet18").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = canonize(model)
    x = images("resnet18")
    model.eval()
    torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)
    model.train()
    first = lrp(model, x, 2)
    second = lrp(model, x, 2)  # Captum 0.9 deletes the rules after a call: they must be re-attached
    torch.testing.assert_close(first, second)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "BN statistics changed"


def test_composite_maps_are_finite_and_normalised():
    model, x = calibrated("small_cnn"), images("small_cnn")
    maps = relevance_maps(lrp(model, (x * 255).to(torch.uint8), torch.tensor([1, 2, 3])))
    assert maps.shape == (3, 28, 28) and torch.isfinite(maps).all()
    torch.testing.assert_close(maps.flatten(1).abs().amax(1), torch.ones(3, dtype=maps.dtype))
    with pytest.raises(ValueError, match="targets"):
        lrp(model, x, torch.tensor([1, 2]))


def test_retain_share_splits_relevance_by_what_each_image_put_in():
    forget, retain = torch.full((1, 1, 4, 4), 200, dtype=torch.uint8), torch.full((1, 1, 4, 4), 100, dtype=torch.uint8)
    mask = torch.zeros(1, 4, 4)
    mask[:, :2] = 1  # top half from the forget image, bottom half from the remaining one
    relevance = torch.zeros(1, 1, 4, 4)
    relevance[..., 2:, :] = 1.0
    assert retain_share(relevance, forget, retain, mask).item() == 1.0
    relevance[..., :2, :] = 3.0
    assert retain_share(relevance, forget, retain, mask).item() == 0.25
    relevance[..., 2:, :] = -5.0  # negative relevance does not count
    assert retain_share(relevance, forget, retain, mask).item() == 0.0
    half = torch.full((1, 4, 4), 0.5)  # equal weights, the forget image twice as bright: 1/3 from the remaining
    torch.testing.assert_close(retain_share(torch.ones(1, 1, 4, 4), forget, retain, half), torch.tensor([1 / 3]))
