"""Networks: shapes, seeded init, normalisation inside, and the structure exact LRP needs."""

import pytest
import torch
from captum.attr._utils.custom_modules import Addition_Module
from torch import nn

import natmu_lite as nl

CASES = [("small_cnn", 1, 28, 10), ("resnet18", 3, 32, 100), ("resnet34", 3, 64, 200), ("vgg16_bn", 3, 32, 10)]


@pytest.mark.slow
@pytest.mark.parametrize("name, channels, size, k", CASES)
def test_forward_shape_and_seeded_init(name, channels, size, k):
    a = nl.build_model(name, k, channels, size, seed=1)
    b = nl.build_model(name, k, channels, size, seed=1)
    c = nl.build_model(name, k, channels, size, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.fc.weight, c.fc.weight)
    a.eval()
    with torch.no_grad():
        assert a(torch.rand(2, channels, size, size)).shape == (2, k)


@pytest.mark.slow
@pytest.mark.parametrize("name, channels, size, k", CASES)
def test_lrp_friendly_structure(name, channels, size, k):
    model = nl.build_model(name, k, channels, size)
    forbidden = [m for m in model.modules() if isinstance(m, nn.Identity | nn.Flatten)
                 or (isinstance(m, nn.Sequential) and len(m) == 0)]
    assert not forbidden
    calls = {}
    leaves = [m for m in model.modules() if not list(m.children())]
    for m in leaves:
        m.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls.get(id(mod), 0) + 1))
    model.eval()
    with torch.no_grad():
        model(torch.rand(1, channels, size, size))
    assert max(calls.values()) == 1, "a module is used twice (Captum's LRP refuses that)"
    if name.startswith("resnet"):
        adds = [m for m in model.modules() if isinstance(m, Addition_Module)]
        assert len(adds) == (8 if name == "resnet18" else 16)  # every skip addition is a module


def test_normalisation_is_inside_the_model():
    data_mean, data_std = (0.2, 0.4, 0.6), (0.1, 0.2, 0.3)
    model = nl.build_model("resnet18", 10, 3, 32, data_mean, data_std)
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(model.normalize(x), (x - torch.tensor(data_mean).view(1, 3, 1, 1))
                               / torch.tensor(data_std).view(1, 3, 1, 1))
    assert "normalize.mean" in model.state_dict()


def test_unknown_model():
    with pytest.raises(ValueError, match="valid: small_cnn, resnet18"):
        nl.build_model("transformer", 10)
