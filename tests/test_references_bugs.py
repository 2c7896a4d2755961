"""Regression tests for two bugs found while writing the independent references (both fixed since):
``reinit_head`` drew the new head from the global torch RNG instead of the method's seed, and
``predict`` turned the parameters of a model that was not yet channels_last (one loaded from the
checkpoint cache) into inference tensors, so that autograd on that model raised afterwards."""

import pytest
import torch

import natmu_lite as nl
from natmu_lite.methods.ssd import fisher_importance

from .conftest import synthetic


@pytest.mark.slow
@pytest.mark.parametrize("method", ["natmu", "amnesiac", "badteacher"])
def test_reinit_head_is_reproducible_for_a_seed(method):
    data = synthetic(n_per_class=6)
    split = nl.make_split(data, "full-class", target="c1")
    original = nl.model_for("small_cnn", data)
    heads = []
    for global_seed in (1, 2):  # whatever ran before the call
        torch.manual_seed(global_seed)
        model = nl.METHODS[method](original, data, split, nl.Recipe(epochs=1), reinit_head=True, seed=0,
                                   progress=False)
        heads.append(model.fc.weight.detach().clone())
    assert torch.equal(*heads)
    other = nl.METHODS[method](original, data, split, nl.Recipe(epochs=1), reinit_head=True, seed=1, progress=False)
    assert not torch.equal(other.fc.weight, heads[0])  # the seed draws it


@pytest.mark.slow
def test_gradients_still_work_on_a_model_after_predict():
    data = synthetic(n_per_class=2)
    model = nl.model_for("small_cnn", data)  # as cached_model builds it before loading the weights
    nl.predict(model, data.train_x)
    assert not any(p.is_inference() for p in model.parameters())
    fisher_importance(model, data.train_x, data.train_y, 4)  # raised "Inference tensors cannot be saved"
