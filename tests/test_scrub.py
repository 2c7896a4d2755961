"""SCRUB (methods/scrub.py): away from the teacher on the forget set, close to it on the rest."""

import pytest
import torch

import natmu_lite as nl
from natmu_lite.methods.scrub import divergence

from .conftest import RECIPE, kl_to, synthetic


def test_scrub_divergence_is_t_squared_kl_from_the_teacher():
    """SCRUB's ``DistillKL``: T^2 * sum_k p_t log(p_t / p_s) over classes, averaged over the batch, with
    both distributions softened by T and the teacher's logits taken without gradient."""
    data = synthetic(n_per_class=2)
    teacher = nl.model_for("small_cnn", data, seed=0).eval()
    x = data.train_x.float() / 255
    logits = torch.randn(len(x), data.num_classes, requires_grad=True)
    t = 3.0
    p_t, log_p_s = (teacher(x) / t).softmax(1), (logits / t).log_softmax(1)
    want = t ** 2 * (p_t * (p_t.log() - log_p_s)).sum(1).mean()
    got = divergence(teacher, t)(logits, x)
    torch.testing.assert_close(got, want)
    got.backward()
    assert logits.grad.abs().sum() > 0 and all(p.grad is None for p in teacher.parameters())


@pytest.mark.slow
def test_scrub_max_steps_push_the_forget_set_away_from_the_teacher(fmnist, fmnist_original, split):
    """With the official small-scale weights (alpha 0.5, gamma 1), two epochs of max steps raise the
    forget set's KL to the teacher (the original) well above a run without them and well above the
    retain set's KL, while test accuracy stays within 2 points: SCRUB forgets D_f, not everything."""
    recipe = RECIPE.with_(batch_size=64)  # two max steps per epoch on the 100 forget images
    runs = {ms: nl.METHODS["scrub"](fmnist_original, fmnist, split, recipe, msteps=ms, alpha=0.5, gamma=1.0,
                                    temperature=4.0, seed=0, progress=False) for ms in (0, 2)}
    forget_kl = {ms: kl_to(m, fmnist_original, fmnist, split.forget) for ms, m in runs.items()}
    assert forget_kl[2] > 2 * forget_kl[0]
    assert forget_kl[2] > 2 * kl_to(runs[2], fmnist_original, fmnist, split.retain)
    assert nl.evaluate(runs[2], fmnist, split)["RA"] > nl.evaluate(fmnist_original, fmnist, split)["RA"] - 2
