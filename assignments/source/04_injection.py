# ruff: noqa: E402
# The source of assignment 4 (see assignments/build.py): solutions between the BEGIN/END SOLUTION lines.

# %% [markdown]
# # Assignment 4: design your own injection
#
# NatMU's injection function $\mathcal{T}$ is the simplest that works: a pixel-wise weighted sum under
# four smooth masks, "motivated by data augmentation like MixUp and CutMix" (paper Sec. 2.3). Nothing in
# the method needs that particular choice: the labels still name the remaining image's class, and the
# forget image still appears only in part. In this assignment you design another injection function,
# plug it into NatMU in place of the gradual-MixUp blend (same relevant labels, same remaining images,
# same recipe), evaluate it with the benchmark runner against NatMU, and report its AvgGap to Retrain.
#
# **Learning goals**: tell the essential parts of a method (true labels, partial forget content) from
# incidental ones (the mask family); add a method to the package's registry; compare methods the way
# the paper does, by their gap to Retrain over RA, FA and MIA.
#
# **Time**: about 90 minutes, of which about a minute of training per seed on a laptop CPU.
# **Graded**: the contract of your `inject` (autograder); your design, results and report (by your
# instructor).

# %%
# Parameters
SETTING = "default"
SCENARIO = "random-1%"
SEEDS = [0]  # more seeds give error bars: [0, 1, 2]
# the solution's knob: the side of the pasted box, as a fraction of the image side
BOX = 0.7

# %%
from dataclasses import replace

import torch

import natmu_lite as nl
from natmu_lite import plots
from natmu_lite.grid import run_grid
from natmu_lite.methods.base import (
    fit_with_retain,
    register,
    reinit_last_linear,
    unregister,
    working_copy,
)
from natmu_lite.runs import experiment
from natmu_lite.tables import avg_gaps, paper_table, to_styler

exp = experiment(SETTING, SCENARIO, seed=SEEDS[0])
print(exp.split)

# %% [markdown]
# ## Exercise 1: an injection function
#
# Write `inject(forget_x, retain_x, mask_id, generator)`. `forget_x` and `retain_x` are uint8 image
# batches of the same shape `(N, C, H, W)`, pair `i` being a forget image and a remaining image of one of
# its relevant classes; `mask_id[i]` (0 to 3) is the rank of that class, which NatMU uses to pick one of
# its four masks (use it or ignore it); `generator` is a seeded `torch.Generator` for any randomness.
# Return the hybrids: uint8, the same shape, every pixel a mix of the two images' pixels there, each
# hybrid keeping part of *both* images. Ideas: CutMix-style boxes, stripes or checkerboards, a
# different family of smooth masks, random MixUp weights per image.

# %%
def inject(forget_x: torch.Tensor, retain_x: torch.Tensor, mask_id: torch.Tensor,
           generator: torch.Generator) -> torch.Tensor:
    """Hybrids of forget and remaining images (uint8, same shape): the injection
    T(x_f, x_r)."""
    ### BEGIN SOLUTION
    # CutMix: a box of the forget image, BOX of each side (0.7² ≈ half the area, like
    # NatMU's masks at δ = 0), pasted at a random place into the remaining image.
    n, _, h, w = forget_x.shape
    bh, bw = max(1, round(BOX * h)), max(1, round(BOX * w))
    top = torch.randint(0, h - bh + 1, (n, 1, 1), generator=generator)
    left = torch.randint(0, w - bw + 1, (n, 1, 1), generator=generator)
    rows, cols = torch.arange(h)[:, None], torch.arange(w)[None, :]
    box = (rows >= top) & (rows < top + bh) & (cols >= left) & (cols < left + bw)
    return torch.where(box[:, None], forget_x, retain_x)
    ### END SOLUTION


# %% [markdown]
# Your hybrids next to NatMU's blends, for the same forget and remaining images:

# %%
uset = nl.build_unlearning_set(exp.original, exp.data, exp.split, seed=SEEDS[0])
pairs = slice(0, 8)
forget_x = exp.data.train_x[exp.split.forget[uset.forget_pos[pairs]]]
retain_x = exp.data.train_x[uset.retain_index[pairs]]
yours = inject(forget_x, retain_x, uset.mask_id[pairs],
               torch.Generator().manual_seed(0))
classes = exp.data.classes
titles = [f"NatMU → {classes[int(c)]}" for c in uset.labels[pairs]] + [
    f"yours → {classes[int(c)]}" for c in uset.labels[pairs]]
fig = plots.image_grid(torch.cat([uset.images[pairs], yours]), titles, cols=8)

# %% [markdown]
# ## Your injection inside NatMU
#
# `natmu_with_injection` is NatMU with one change: the blends come from an `inject` function. Registered
# as a method, it runs in the benchmark runner like any other, with NatMU's recipe and knobs.

# %%
def natmu_with_injection(model, data, split, recipe, *, inject, delta=0.0, n=4,
                         cap=None, reinit_head=False, seed=0, callback=None,
                         progress=True):
    """NatMU whose unlearning instances are inject(x_f, x_r, mask_id, generator) instead
    of the masked blend."""
    uset = nl.build_unlearning_set(model, data, split, delta=delta, n=n, cap=cap,
                                   seed=seed)
    images = inject(data.train_x[split.forget[uset.forget_pos]],
                    data.train_x[uset.retain_index], uset.mask_id,
                    torch.Generator().manual_seed(seed))
    unlearned = working_copy(model)
    if reinit_head:
        reinit_last_linear(unlearned)
    return fit_with_retain(unlearned, data, split, recipe, images, uset.labels,
                           augment_retain=True, seed=seed, desc="natmu-inject",
                           callback=callback, progress=progress)


unregister("natmu-inject")  # so that this cell can run again
# its name in the tables and figures, its colour, its place after NatMU
register("natmu-inject", display="NatMU (your injection)", color="tab:cyan",
         order=12)(natmu_with_injection)
print("methods:", ", ".join(sorted(nl.METHODS)))

# %% [markdown]
# ## Exercise 2: the benchmark
#
# The setting gets the new method with NatMU's recipe and knobs plus your `inject`; `run_grid` runs
# Retrain (from the cache), NatMU and yours on `SCENARIO` for each seed, and `paper_table` lays the results
# out as in the paper, with the AvgGap to Retrain (lower is better).

# %%
s = exp.setting
changes = s.recipe_changes.get("natmu", {})
setting = replace(s, recipe_changes={**s.recipe_changes, "natmu-inject": changes},
                  knobs={**s.knobs, "natmu-inject": {**s.knobs.get("natmu", {}),
                                                     "inject": inject}})
results = run_grid(setting, [SCENARIO], ["natmu", "natmu-inject"], seeds=SEEDS,
                   progress=False)
gaps = avg_gaps(results).iloc[0]
print(f"AvgGap to Retrain: NatMU {gaps['natmu']:.2f}, yours {gaps['natmu-inject']:.2f}")
to_styler(paper_table(results))

# %% [markdown]
# ## Exercise 3: report
#
# Describe your injection function and why you expected it to work, report its AvgGap next to
# NatMU's, and say which metric (RA, FA or MIA) makes the difference. How much of a difference is
# meaningful here? (At 1% forgetting one forget image is one point of FA, and one seed gives no error
# bars.)
#
# ### BEGIN SOLUTION
# The solution's injection is CutMix: a box of the forget image covering about half of the area,
# pasted at a random place into the remaining image, so each hybrid contains a sharp-edged piece of
# the forget sample rather than a smoothly weighted whole. It keeps NatMU's two essentials (the label
# names the class that is truly present; the forget image is there only in part), so it should not
# over-forget; its pieces are smaller views of the forget image than a smooth blend, so the model may
# unlearn less of it. The table gives both AvgGaps and each metric's gap: the row with the largest
# difference between the two methods is the one to discuss. With 100 forget images and one seed,
# differences of a point or two in FA or MIA are within the noise; to claim one injection beats the
# other, run several seeds (`SEEDS = [0, 1, 2]`) and compare the mean gaps with their spread.
#
# **Grading** (5 points): *design*, 2 for a design that keeps NatMU's two essentials (true label, partial
# forget content) and a reason to expect it to work; *AvgGap reported*, 1 for reporting AvgGap next to
# NatMU's from their own run; *metric*, 1 for naming the metric that makes the difference; *noise*, 1 for
# judging the difference against the noise (one image is one point at 1% forgetting; more seeds for a
# claim). Reward a careful negative result as much as a win.
# ### END SOLUTION

# %% [markdown]
# ## Beyond the assignment: your method's verdict
#
# The book judges NatMU against nine rivals under one protocol (chapter 6). Your method can be judged
# the same way: put the cell that registers `natmu-inject` (with your injection function and the
# imports it needs) into a file of its own, `my_injection.py`, and run in a terminal
#
# ```bash
# natmu-lite --method-file my_injection.py verdict natmu-inject --quick --workers 2
# ```
#
# It writes `verdict-natmu-inject-quick/verdict.md` (and `.html`): your method's row beside the others, and
# its decisions against NatMU, the paper's baselines and the best. `--quick` (about 8 minutes on two
# CPU cores) runs every method at reduced sizes, two seeds and two trials: a check that the whole path
# works, labelled QUICK everywhere, not evidence. Without `--quick` the command adds your method to the
# committed protocol itself (a clone of the repository; hours on a CPU).
