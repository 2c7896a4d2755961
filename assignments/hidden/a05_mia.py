"""Hidden checks of assignment 5: the entropy on other class counts and seeds than the public checks use."""

import torch

import natmu_lite as nl
from natmu_lite.classroom.checking import check, graded


@graded(2, "k", [3, 7])
def check_entropy_on_other_class_counts(student, k):
    probs = torch.randn(25, k, generator=torch.Generator().manual_seed(k)).softmax(1)
    got = student("entropy", probs)
    check(isinstance(got, torch.Tensor) and got.shape == (25,), "entropy should return one value per row")
    check(torch.allclose(got.double(), nl.metrics.entropy(probs).double(), atol=1e-5),
          "entropy gives other values than the reference")
