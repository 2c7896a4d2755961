"""Hidden checks of assignment 4: the contract of ``inject`` on other shapes and seeds than the public checks
use."""

import torch

from natmu_lite.classroom.checking import check, graded
from natmu_lite.classroom.checks.a04_injection import hybrids, pairs

SHAPES = [(3, 1, 13, 17), (7, 3, 5, 5)]


@graded(3, "shape", SHAPES)
def check_contract_on_other_shapes(student, shape):
    xf, xr, mask_id = pairs(shape, seed=21)
    out = hybrids(student, xf, xr, mask_id, seed=4).int()
    inside = (out >= torch.minimum(xf, xr).int() - 1) & (out <= torch.maximum(xf, xr).int() + 1)
    check(inside.all(), "a pixel of a hybrid lies outside its two images' values")
    white, black = torch.full(shape, 255, dtype=torch.uint8), torch.zeros(shape, dtype=torch.uint8)
    share = hybrids(student, white, black, mask_id, seed=4).float().mean((1, 2, 3)) / 255
    check(((share >= 0.05) & (share <= 0.95)).all(), "a hybrid keeps (almost) nothing of one of its images")


@graded(2, "seed", [13, 14])
def check_same_seed_same_hybrids(student, seed):
    xf, xr, mask_id = pairs((5, 3, 12, 12), seed=seed)
    check(torch.equal(hybrids(student, xf, xr, mask_id, seed), hybrids(student, xf, xr, mask_id, seed)),
          "two calls with generators of the same seed give different hybrids")
