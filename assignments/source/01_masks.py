# ruff: noqa: E402
# The source of assignment 1 (see assignments/build.py): solutions between the BEGIN/END SOLUTION lines.

# %% [markdown]
# # Assignment 1: the gradual-MixUp masks
#
# NatMU injects correct information into each forget image by blending it, pixel by pixel, with an
# image of a relevant remaining class (paper Sec. 2.3):
#
# $$\mathcal{T}_m(x^f, x^r) = x^f \circ m + x^r \circ (\mathbf{1} - m),$$
#
# where the mask $m$ gives the weight of the *forget* image at each pixel. In this assignment you write
# the four "gradual MixUp" masks with their scale $\delta$, and the blend itself.
#
# **Learning goals**: read a method's definition off a paper and a reference implementation; see
# what part of a forget image each blend keeps; meet the knob $\delta$ that decides how much of the
# forget image goes into the unlearning instances.
#
# **Time**: about 30 minutes. **Graded functions**: `natmu_masks`, `blend`.

# %%
# Parameters
SETTING = "default"
SCENARIO = "random-1%"
SEED = 0
DELTAS = [-0.2, 0.0, 0.2]

# %%
import pandas as pd
import torch

import natmu_lite as nl
from natmu_lite import plots
from natmu_lite.runs import experiment

exp = experiment(SETTING, SCENARIO, seed=SEED)
h, w = exp.data.shape[1:]
print(exp.data, exp.split, sep="\n")

# %% [markdown]
# ## Exercise 1: four masks and their scale
#
# With the "tent" $t_n(i) = \min(i,\ n-1-i) \,/\, (n/2)$ for $i = 0, \dots, n-1$ (0 at both ends, highest
# in the middle), the four masks of an $h \times w$ image are
#
# - $m_1[r, c] = t_h(r)$, a tent along the rows,
# - $m_2[r, c] = t_w(c)$, a tent along the columns,
# - $m_3 = \frac{h/2 - 1}{h/2} - m_1$ and $m_4 = \frac{w/2 - 1}{w/2} - m_2$, their complements (so
#   $m_1 + m_3$ is the same at every pixel),
#
# and each is shifted by $\delta$ and clipped to $[0, 1]$: $m^{\text{scaled}} = \text{clip}(m + \delta, 0, 1)$
# (paper Eq. 1). Return them stacked as a float32 tensor of shape `(4, height, width)`.

# %%
def natmu_masks(height: int, width: int, delta: float = 0.0) -> torch.Tensor:
    """The four gradual-MixUp masks, shape (4, height, width): the weight of the forget
    image."""
    ### BEGIN SOLUTION
    def tent(n: int) -> torch.Tensor:
        i = torch.arange(n, dtype=torch.float32)
        return torch.minimum(i, n - 1 - i) / (n / 2)

    m1 = tent(height)[:, None].expand(height, width)
    m2 = tent(width)[None, :].expand(height, width)
    m3 = (height / 2 - 1) / (height / 2) - m1
    m4 = (width / 2 - 1) / (width / 2) - m2
    return (torch.stack([m1, m2, m3, m4]) + delta).clamp(0, 1)
    ### END SOLUTION


# %% [markdown]
# Check your masks against the package's, then look at them: bright pixels take the forget image.

# %%
for size, delta in [((h, w), 0.0), ((h, w), 0.3), ((7, 10), -0.1)]:
    torch.testing.assert_close(natmu_masks(*size, delta), nl.natmu_masks(*size, delta))
print("natmu_masks agrees with the package")
masks = torch.cat([natmu_masks(h, w, d) for d in DELTAS])
fig = plots.image_grid(
    masks, [f"m{j + 1}, δ = {d:+.1f}" for d in DELTAS for j in range(4)], cols=4)

# %% [markdown]
# ## Exercise 2: the blend
#
# Write $\mathcal{T}_m$ for a batch: `forget_x` and `retain_x` are uint8 images of shape `(N, C, H, W)`,
# `masks` has shape `(N, H, W)` (one mask per pair, the same for every channel) or `(N, 1, H, W)`.
# Compute in float, then convert back to uint8 by truncation (`.to(torch.uint8)`), as the official
# code does.

# %%
def blend(forget_x: torch.Tensor, retain_x: torch.Tensor,
          masks: torch.Tensor) -> torch.Tensor:
    """forget_x * m + retain_x * (1 - m) on raw uint8 pixels, returned as uint8."""
    ### BEGIN SOLUTION
    m = masks if masks.dim() == 4 else masks[:, None]
    mixed = forget_x.float() * m + retain_x.float() * (1 - m)
    return mixed.clamp(0, 255).to(torch.uint8)
    ### END SOLUTION


# %% [markdown]
# Blend the first forget image with one remaining image under each mask, for each $\delta$:

# %%
x_f = exp.data.train_x[exp.split.forget[:1]].expand(4, -1, -1, -1)
x_r = exp.data.train_x[exp.split.retain[:1]].expand(4, -1, -1, -1)
blends = {d: blend(x_f, x_r, natmu_masks(h, w, d)) for d in DELTAS}
d0 = DELTAS[0]
torch.testing.assert_close(blends[d0], nl.blend(x_f, x_r, nl.natmu_masks(h, w, d0)),
                           atol=1, rtol=0)
titles = [t for d in DELTAS for t in ["forget", "remaining",
                                      *(f"m{j + 1}, δ = {d:+.1f}" for j in range(4))]]
fig = plots.image_grid(
    torch.cat([torch.cat([x_f[:1], x_r[:1], b]) for b in blends.values()]),
    titles, cols=6)
pd.DataFrame(
    {f"δ = {d:+.1f}": natmu_masks(h, w, d).mean((1, 2)).tolist() for d in DELTAS},
    index=["m1", "m2", "m3", "m4"]).T.round(3).rename_axis("mean forget weight")

# %% [markdown]
# ## Question
#
# At $\delta = 0$, how much of the forget image does a blend hold on average, and why is it useful that
# the four masks keep *different* parts of it? What would $\delta = 1$ do?
#
# ### BEGIN SOLUTION
# At $\delta = 0$ each mask's mean weight is just under one half (printed above), so a blend is roughly
# half forget image, half remaining image. Each mask keeps a different region (the middle rows, the
# middle columns, the top and bottom, the left and right), so the four blends of one forget image each
# ask the model to unlearn a different *part* of it, while the label always names the class that is
# truly present. With $\delta = 1$ every mask is 1 everywhere: the "blend" is the forget image itself,
# labelled with another class, which is plain relabelling (Amnesiac with relevant labels).
#
# **Grading** (2 points, *question on delta*): blends hold a bit under half of the forget image at
# $\delta = 0$ and each mask keeps a different region (1); $\delta = 1$ makes the blend the forget image
# itself, i.e. relabelling (1).
# ### END SOLUTION
