"""Assignment 1: ``natmu_masks`` and ``blend`` against the package's reference, on odd and even sizes, and against
independent references: NumPy from the paper's equations, the truncated blend computed exactly, and small cases
worked out by hand."""

import numpy as np
import torch

import natmu_lite as nl

from ..checking import check, graded
from ..references import ref_masks, truncation_check

FUNCTIONS = ("natmu_masks", "blend")  # what the student writes
RUBRIC = {"question on delta": 2}  # graded by hand: points

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


@graded(2, "h,w", SIZES)
def check_tents_m1_m2(student, h, w):
    got, want = masks(student, h, w, 0.0), nl.natmu_masks(h, w, 0.0)
    check(got[0, 0].abs().max() < 1e-5 and got[0, -1].abs().max() < 1e-5,
          f"m1 should be 0 on the first and last row; yours is {got[0, 0].abs().max():.4f} there")
    first_difference(got[:2], want[:2], f"height={h}, width={w}, delta=0")


@graded(2, "h,w", SIZES)
def check_complements_m3_m4(student, h, w):
    got, want = masks(student, h, w, 0.0), nl.natmu_masks(h, w, 0.0)
    if h % 2 == 0:  # for odd sizes m3 dips below 0 in the middle row, and the clipping breaks the sum
        total = got[0] + got[2]
        check((total - total[0, 0]).abs().max() < 1e-5,
              f"m1 + m3 should be the same at every pixel ((h/2 - 1)/(h/2) = {(h / 2 - 1) / (h / 2):.4f} for "
              f"height {h}); yours ranges from {total.min():.4f} to {total.max():.4f}")
    first_difference(torch.cat([want[:2], got[2:]]), want, f"height={h}, width={w}, delta=0")


@graded(2, "delta", [-0.3, -0.053, 0.2, 0.6, 1.0])
def check_delta_shifts_and_clips(student, delta):
    for h, w in SIZES:
        got, want = masks(student, h, w, delta), nl.natmu_masks(h, w, delta)
        check(got.min() >= 0 and got.max() <= 1, f"with delta={delta} the masks should be clipped to [0, 1]; "
                                                 f"yours range from {got.min():.4f} to {got.max():.4f}")
        first_difference(got, want, f"height={h}, width={w}, delta={delta}")


def random_pairs(g, n, c, h, w):
    return (torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8),
            torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8))


@graded(3, "channels", [1, 3])
def check_blend_matches_the_formula(student, channels):
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


@graded(2)
def check_blend_accepts_masks_with_a_channel_axis(student):
    g = torch.Generator().manual_seed(0)
    xf, xr = random_pairs(g, 4, 3, 9, 6)
    m = nl.natmu_masks(9, 6)
    got = student("blend", xf, xr, m[:, None])
    check(isinstance(got, torch.Tensor) and got.shape == xf.shape,
          "blend should also accept masks of shape (N, 1, H, W) and return (N, C, H, W) images")
    check((got.int() - nl.blend(xf, xr, m).int()).abs().max() <= 1,
          "blend gives different images for masks of shape (N, 1, H, W) than for the same masks as (N, H, W)")


# ---------------------------------------------------------------------------------------------
# independent of the package


@graded(2, "h,w", SIZES)
def check_masks_match_the_papers_equations(student, h, w):
    """Against NumPy in float64 from the tent and Eq. 1 (references.ref_masks), not against the package."""
    for delta in (0.0, -0.3, 0.2, 0.6):
        got = masks(student, h, w, delta)
        first_difference(got.double(), torch.from_numpy(ref_masks(h, w, delta)),
                         f"height={h}, width={w}, delta={delta}, from the paper's equations")


@graded(2)
def check_masks_worked_out_by_hand(student):
    """A 4 x 6 and a 3 x 5 image (even and odd sides) worked out by hand, then shifted by delta and clipped."""
    # height 4: t(i) = min(i, 3 - i) / 2 = [0, 1/2, 1/2, 0]; m3 = (2 - 1) / 2 - m1 = [1/2, 0, 0, 1/2]
    # width 6: t(i) = min(i, 5 - i) / 3 = [0, 1/3, 2/3, 2/3, 1/3, 0]; m4 = (3 - 1) / 3 - m2 = [2/3, 1/3, 0, 0, 1/3, 2/3]
    # height 3: t(i) = min(i, 2 - i) / 1.5 = [0, 2/3, 0]; m3 = (1.5 - 1) / 1.5 - m1 = [1/3, -1/3, 1/3], clipped to
    #   [1/3, 0, 1/3]
    # width 5: t(i) = min(i, 4 - i) / 2.5 = [0, 0.4, 0.8, 0.4, 0]; m4 = (2.5 - 1) / 2.5 - m2 = 0.6 - m2, clipped to
    #   [0.6, 0.2, 0, 0.2, 0.6]
    # delta = -0.4 on the 4 x 6 masks: m1 = [0, 0.1, 0.1, 0] (0 - 0.4 clipped to 0); delta = 0.6: m4 = [1, 14/15,
    #   0.6, 0.6, 14/15, 1] (2/3 + 0.6 and 1/3 + 0.6 = 14/15, the first clipped to 1)
    cases = [(4, 6, 0.0, [0, 1 / 2, 1 / 2, 0], [0, 1 / 3, 2 / 3, 2 / 3, 1 / 3, 0], [1 / 2, 0, 0, 1 / 2],
              [2 / 3, 1 / 3, 0, 0, 1 / 3, 2 / 3]),
             (3, 5, 0.0, [0, 2 / 3, 0], [0, 0.4, 0.8, 0.4, 0], [1 / 3, 0, 1 / 3], [0.6, 0.2, 0, 0.2, 0.6]),
             (4, 6, -0.4, [0, 0.1, 0.1, 0], [0, 0, 4 / 15, 4 / 15, 0, 0], [0.1, 0, 0, 0.1],
              [4 / 15, 0, 0, 0, 0, 4 / 15]),
             (4, 6, 0.6, [0.6, 1, 1, 0.6], [0.6, 14 / 15, 1, 1, 14 / 15, 0.6], [1, 0.6, 0.6, 1],
              [1, 14 / 15, 0.6, 0.6, 14 / 15, 1])]
    for h, w, delta, m1, m2, m3, m4 in cases:
        rows, cols = torch.tensor([m1, m3], dtype=torch.float64), torch.tensor([m2, m4], dtype=torch.float64)
        want = torch.stack([rows[0][:, None].expand(h, w), cols[0][None].expand(h, w),
                            rows[1][:, None].expand(h, w), cols[1][None].expand(h, w)])
        first_difference(masks(student, h, w, delta).double(), want,
                         f"height={h}, width={w}, delta={delta}, worked out by hand")


# forget pixel, remaining pixel, mask (the forget image's weight), and the blend worked out by hand: the exact value
# forget * m + remaining * (1 - m), truncated to uint8 as the official code does (every value here is exact in float32)
BY_HAND = [(201, 10, 0.375, 81),  # 75.375 + 6.25 = 81.625 -> 81 (rounding would give 82)
           (200, 103, 0.75, 175),  # 150 + 25.75 = 175.75 -> 175 (rounding: 176)
           (255, 0, 0.5, 127),  # 127.5 -> 127 (rounding: 128)
           (17, 99, 0.25, 78),  # 4.25 + 74.25 = 78.5 -> 78 (with the weights swapped: 12.75 + 24.75 = 37.5 -> 37)
           (40, 220, 1.0, 40),  # m = 1: the forget pixel
           (40, 220, 0.0, 220)]  # m = 0: the remaining pixel


@graded(2)
def check_blend_worked_out_by_hand(student):
    """Six pairs of flat 3-channel images whose blends are worked out by hand (BY_HAND)."""
    xf, xr, m, _ = (torch.tensor(column) for column in zip(*BY_HAND))
    xf = xf.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()
    xr = xr.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()
    got = student("blend", xf, xr, m.float().view(-1, 1, 1).expand(-1, 2, 2).contiguous())
    check(isinstance(got, torch.Tensor) and got.shape == xf.shape,
          f"blend should return images of shape {tuple(xf.shape)}; yours returns "
          f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got)}")
    for i, (f, r, weight, value) in enumerate(BY_HAND):
        mine = got[i].unique().tolist()
        check(mine == [value], f"forget pixel {f}, remaining pixel {r} and mask {weight} should blend to "
                               f"{f} * {weight} + {r} * {1 - weight} = {f * weight + r * (1 - weight)}, truncated to "
                               f"{value}; yours gives {mine if len(mine) > 1 else mine[0]}"
                               + (" (rounded: convert with .to(torch.uint8), which truncates)"
                                  if mine == [value + 1] else ""))


@graded(3, "channels", [1, 3])
def check_blend_truncates_the_exact_value(student, channels):
    """Every pixel against floor(forget * m + remaining * (1 - m)) computed in float64 with NumPy (where float32
    arithmetic may land on either side of an integer, both neighbours pass), not against the package."""
    g = torch.Generator().manual_seed(10 + channels)
    for h, w in SIZES:
        xf, xr = random_pairs(g, 8, channels, h, w)
        natmu = torch.from_numpy(ref_masks(h, w, 0.1)).float()[torch.arange(8) % 4]
        for m in (natmu, torch.rand(8, h, w, generator=g)):
            got = student("blend", xf, xr, m)
            check(isinstance(got, torch.Tensor) and got.shape == xf.shape,
                  f"blend should return images of shape {tuple(xf.shape)}; yours returns "
                  f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got)}")
            ok, _ = truncation_check(got.numpy(), xf.numpy(), xr.numpy(), m.double().numpy())
            if not ok.all():
                i, ch, r, col = np.argwhere(~ok)[0].tolist()
                a, b, weight = int(xf[i, ch, r, col]), int(xr[i, ch, r, col]), float(m[i, r, col])
                value = a * weight + b * (1 - weight)
                check(False, f"image {i}, channel {ch}, pixel ({r}, {col}): forget {a}, remaining {b}, mask "
                             f"{weight:.4f} give {a} * m + {b} * (1 - m) = {value:.4f}, which truncates to "
                             f"{int(value)}; yours is {int(got[i, ch, r, col])}. {(~ok).sum()} pixels differ in all.")
