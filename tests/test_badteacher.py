"""BadTeacher (methods/badteacher.py): distillation from a competent and an incompetent teacher."""

import pytest
import torch.nn.functional as F

import natmu_lite as nl
from natmu_lite.methods.badteacher import incompetent_teacher


@pytest.mark.slow
def test_badteacher_moves_forget_predictions_toward_the_bad_teacher(fmnist, fmnist_original, split):
    bad = incompetent_teacher(fmnist_original, seed=0)
    forget_x = fmnist.train_x[split.forget]
    target = nl.predict(bad, forget_x).softmax(1)

    def kl_to_bad(model):
        return F.kl_div(nl.predict(model, forget_x).log_softmax(1), target, reduction="batchmean").item()

    model = nl.METHODS["badteacher"](fmnist_original, fmnist, split, nl.Recipe("adamw", lr=1e-3, epochs=2),
                                     progress=False)
    assert kl_to_bad(model) < 0.5 * kl_to_bad(fmnist_original)
    assert nl.evaluate(model, fmnist, split)["RA"] > 80
