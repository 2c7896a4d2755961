"""Hidden checks of assignment 1: the masks and the blend on sizes, deltas and seeds the public checks do not use."""

import torch

import natmu_lite as nl
from natmu_lite.classroom.checking import check, graded
from natmu_lite.classroom.checks.a01_masks import first_difference, masks, random_pairs

SIZES = [(5, 5), (11, 4), (16, 3)]


@graded(3, "h,w", SIZES)
def check_masks_on_other_sizes(student, h, w):
    for delta in (-0.15, 0.35):
        first_difference(masks(student, h, w, delta), nl.natmu_masks(h, w, delta),
                         f"height={h}, width={w}, delta={delta}")


@graded(3, "seed", [101, 202])
def check_blend_on_other_images(student, seed):
    g = torch.Generator().manual_seed(seed)
    xf, xr = random_pairs(g, 6, 2, 5, 7)
    m = torch.rand(6, 5, 7, generator=g)
    got = student("blend", xf, xr, m)
    check(isinstance(got, torch.Tensor) and got.shape == xf.shape and got.dtype == torch.uint8,
          "blend should return uint8 images of the input shape")
    check((got.int() - nl.blend(xf, xr, m).int()).abs().max() <= 1, "blend gives other images than the reference")
