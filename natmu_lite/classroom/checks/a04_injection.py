"""Assignment 4: the contract of the student's ``inject`` (any design that keeps it is accepted): uint8
images of the input shape, each pixel a mix of the two images' pixels, part of both images in every
hybrid, reproducible with the generator, inputs untouched. Nothing here compares with the package (there is
no package function to compare with); the contract is also checked pixel by pixel on pairs worked out by hand."""

import torch

from ..checking import check, graded

FUNCTIONS = ("inject",)  # what the student writes
RUBRIC = {"design": 2, "AvgGap reported": 1, "metric": 1, "noise": 1}  # graded by hand: points

SHAPES = [(6, 1, 28, 28), (5, 3, 32, 32), (1, 1, 7, 10), (9, 3, 9, 6)]


def pairs(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    xf = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    xr = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return xf, xr, torch.arange(shape[0]) % 4


def hybrids(student, xf, xr, mask_id, seed=0):
    out = student("inject", xf, xr, mask_id, torch.Generator().manual_seed(seed))
    check(isinstance(out, torch.Tensor), f"inject should return a torch.Tensor; yours returns {type(out)}")
    check(out.shape == xf.shape, f"inject should return one hybrid per pair, shape {tuple(xf.shape)}; yours has "
                                 f"shape {tuple(out.shape)}")
    check(out.dtype == torch.uint8, f"inject should return uint8 images like its inputs (clamp to [0, 255], then "
                                    f".to(torch.uint8)); yours are {out.dtype}")
    return out


@graded(3, "shape", SHAPES)
def check_hybrids_are_uint8_images_of_the_input_shape(student, shape):
    xf, xr, mask_id = pairs(shape)
    xf0, xr0 = xf.clone(), xr.clone()
    hybrids(student, xf, xr, mask_id)
    check(torch.equal(xf, xf0) and torch.equal(xr, xr0), "inject should not modify its input images")


@graded(4, "shape", SHAPES)
def check_every_pixel_mixes_the_two_images(student, shape):
    xf, xr, mask_id = pairs(shape)
    out = hybrids(student, xf, xr, mask_id).int()
    low, high = torch.minimum(xf, xr).int() - 1, torch.maximum(xf, xr).int() + 1  # 1 level of rounding slack
    bad = ((out < low) | (out > high)).nonzero()
    if len(bad):
        i, c, r, col = bad[0].tolist()
        check(False, f"hybrid {i}, channel {c}, pixel ({r}, {col}) is {out[i, c, r, col]}, but the forget and the "
                     f"remaining image have {xf[i, c, r, col]} and {xr[i, c, r, col]} there: each pixel should be a "
                     f"mix of the two (between them). {len(bad)} pixels are outside.")


@graded(4, "shape", SHAPES)
def check_every_hybrid_keeps_part_of_both_images(student, shape):
    white, black = torch.full(shape, 255, dtype=torch.uint8), torch.zeros(shape, dtype=torch.uint8)
    share = hybrids(student, white, black, torch.arange(shape[0]) % 4).float().mean((1, 2, 3)) / 255
    i = int((share - 0.5).abs().argmax())
    check(share[i] <= 0.95, f"hybrid {i} of a white forget image and a black remaining image is {share[i]:.0%} "
                            "white: it should keep part of the remaining image, whose class is its label")
    check(share[i] >= 0.05, f"hybrid {i} of a white forget image and a black remaining image is {share[i]:.0%} "
                            "white: it should keep part of the forget image, or there is nothing to unlearn")


@graded(3)
def check_randomness_comes_from_the_generator(student):
    xf, xr, mask_id = pairs((8, 1, 28, 28))
    a, b = hybrids(student, xf, xr, mask_id, seed=3), hybrids(student, xf, xr, mask_id, seed=3)
    check(torch.equal(a, b), "two calls with generators of the same seed give different hybrids: draw any random "
                             "numbers with the generator you are given (e.g. torch.rand(..., generator=generator))")


# ---------------------------------------------------------------------------------------------
# worked out by hand


@graded(3)
def check_a_hybrid_of_an_image_with_itself_is_that_image(student):
    """Every pixel of a hybrid mixes the forget and the remaining image's pixels there, w * a + (1 - w) * b with w
    between 0 and 1, so with a == b it is a itself (up to one grey level of rounding): an identity, whatever the
    design. Pixels from another pair of the batch, another channel or a wrapped-around uint8 sum break it."""
    x = torch.randint(0, 256, (6, 3, 9, 6), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
    out = hybrids(student, x, x.clone(), torch.arange(6) % 4)
    diff = (out.int() - x.int()).abs()
    if diff.max() > 1:
        i, c, r, col = (diff == diff.max()).nonzero()[0].tolist()
        check(False, f"with the same image as forget and remaining image, hybrid {i}, channel {c}, pixel ({r}, {col}) "
                     f"should be that image's {x[i, c, r, col]} (a mix of {x[i, c, r, col]} and {x[i, c, r, col]}); "
                     f"yours is {out[i, c, r, col]}. {int((diff > 1).sum())} pixels differ in all.")


@graded(3)
def check_flat_pairs_pixel_by_pixel(student):
    """Flat images with their bounds written out, checked pixel by pixel in plain Python: channel 0 mixes a bright
    forget image (200) into a dark remaining one (40), channel 1 the other way round (40 into 200), channel 2 two
    equal images (120, so the hybrid is 120); the forget share of a pixel is (p - 40) / 160 in channel 0."""
    xf = torch.tensor([200, 40, 120], dtype=torch.uint8).view(1, 3, 1, 1).expand(4, 3, 8, 8).contiguous()
    xr = torch.tensor([40, 200, 120], dtype=torch.uint8).view(1, 3, 1, 1).expand(4, 3, 8, 8).contiguous()
    out = hybrids(student, xf, xr, torch.arange(4)).tolist()
    for i, image in enumerate(out):
        shares = []
        for c, (low, high) in enumerate([(40, 200), (40, 200), (120, 120)]):
            for r, row in enumerate(image[c]):
                for col, p in enumerate(row):
                    check(low - 1 <= p <= high + 1, f"hybrid {i}, channel {c}, pixel ({r}, {col}) is {p}; mixing "
                                                    f"{int(xf[i, c, 0, 0])} (forget) and {int(xr[i, c, 0, 0])} "
                                                    f"(remaining) gives a value from {low} to {high}")
                    if c == 0:
                        shares.append((p - 40) / 160)
        share = sum(shares) / len(shares)
        check(0.05 <= share <= 0.95, f"hybrid {i} holds {share:.0%} of the forget image (channel 0: forget 200, "
                                     "remaining 40): it should keep part of both images")
