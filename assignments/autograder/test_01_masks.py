"""Assignment 1: ``natmu_masks`` and ``blend`` against the package's reference, on odd and even sizes."""

import pytest
import torch
from grading import check

import natmu_lite as nl

SIZES = [(28, 28), (32, 32), (7, 10), (9, 6)]
NAMES = ["m1", "m2", "m3", "m4"]


def first_difference(got: torch.Tensor, want: torch.Tensor, where: str) -> None:
    bad = ((got - want).abs() > 1e-5).nonzero()
    if len(bad):
        j, r, c = bad[0].tolist()
        check(False, f"{NAMES[j]} at row {r}, column {c} ({where}) should be {want[j, r, c]:.4f}; yours is "
                     f"{got[j, r, c]:.4f}. {len(bad)} values differ in all.")


def masks(student, h, w, delta):
    got = student("natmu_masks", h, w, delta)
    check(isinstance(got, torch.Tensor), f"natmu_masks should return a torch.Tensor; yours returns {type(got)}")
    check(got.shape == (4, h, w), f"natmu_masks({h}, {w}) should return shape (4, {h}, {w}); yours has "
                                  f"shape {tuple(got.shape)}")
    check(got.dtype == torch.float32, f"natmu_masks should return float32 weights; yours are {got.dtype}")
    return got


@pytest.mark.parametrize("h,w", SIZES)
def test_tents_m1_m2(student, h, w):
    got, want = masks(student, h, w, 0.0), nl.natmu_masks(h, w, 0.0)
    check(got[0, 0].abs().max() < 1e-5 and got[0, -1].abs().max() < 1e-5,
          f"m1 should be 0 on the first and last row; yours is {got[0, 0].abs().max():.4f} there")
    first_difference(got[:2], want[:2], f"height={h}, width={w}, delta=0")


@pytest.mark.parametrize("h,w", SIZES)
def test_complements_m3_m4(student, h, w):
    got, want = masks(student, h, w, 0.0), nl.natmu_masks(h, w, 0.0)
    if h % 2 == 0:  # for odd sizes m3 dips below 0 in the middle row, and the clipping breaks the sum
        total = got[0] + got[2]
        check((total - total[0, 0]).abs().max() < 1e-5,
              f"m1 + m3 should be the same at every pixel ((h/2 - 1)/(h/2) = {(h / 2 - 1) / (h / 2):.4f} for "
              f"height {h}); yours ranges from {total.min():.4f} to {total.max():.4f}")
    first_difference(torch.cat([want[:2], got[2:]]), want, f"height={h}, width={w}, delta=0")


@pytest.mark.parametrize("delta", [-0.3, -0.053, 0.2, 0.6, 1.0])
def test_delta_shifts_and_clips(student, delta):
    for h, w in SIZES:
        got, want = masks(student, h, w, delta), nl.natmu_masks(h, w, delta)
        check(got.min() >= 0 and got.max() <= 1, f"with delta={delta} the masks should be clipped to [0, 1]; "
                                                 f"yours range from {got.min():.4f} to {got.max():.4f}")
        first_difference(got, want, f"height={h}, width={w}, delta={delta}")


def random_pairs(g, n, c, h, w):
    return (torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8),
            torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8))


@pytest.mark.parametrize("channels", [1, 3])
def test_blend_matches_the_formula(student, channels):
    g = torch.Generator().manual_seed(channels)
    for h, w in SIZES:
        xf, xr = random_pairs(g, 8, channels, h, w)
        for m in (nl.natmu_masks(h, w, 0.1)[torch.arange(8) % 4], torch.rand(8, h, w, generator=g)):
            xf0, xr0 = xf.clone(), xr.clone()
            got, want = student("blend", xf, xr, m), nl.blend(xf, xr, m)
            check(isinstance(got, torch.Tensor) and got.shape == want.shape,
                  f"blend should return images of shape {tuple(want.shape)}; yours returns "
                  f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got)}")
            check(got.dtype == torch.uint8, f"blend should return uint8 images like its inputs; yours are {got.dtype}")
            check(torch.equal(xf, xf0) and torch.equal(xr, xr0), "blend should not modify its input images")
            diff = (got.int() - want.int()).abs()
            if diff.max() > 1:  # one grey level of slack for float rounding and rounding vs truncation
                i, ch, r, col = (diff == diff.max()).nonzero()[0].tolist()
                check(False, f"image {i}, channel {ch}, pixel ({r}, {col}): forget {xf[i, ch, r, col]}, remaining "
                             f"{xr[i, ch, r, col]}, mask {m[i, r, col]:.3f} should blend to {want[i, ch, r, col]}; "
                             f"yours is {got[i, ch, r, col]}")


def test_blend_accepts_masks_with_a_channel_axis(student):
    g = torch.Generator().manual_seed(0)
    xf, xr = random_pairs(g, 4, 3, 9, 6)
    m = nl.natmu_masks(9, 6)
    got = student("blend", xf, xr, m[:, None])
    check(isinstance(got, torch.Tensor) and got.shape == xf.shape,
          "blend should also accept masks of shape (N, 1, H, W) and return (N, C, H, W) images")
    check((got.int() - nl.blend(xf, xr, m).int()).abs().max() <= 1,
          "blend gives different images for masks of shape (N, 1, H, W) than for the same masks as (N, H, W)")
