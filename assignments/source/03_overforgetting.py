# ruff: noqa: E402
# The source of assignment 3 (see assignments/build.py): solutions between the BEGIN/END SOLUTION lines.

# %% [markdown]
# # Assignment 3: measuring over-forgetting
#
# A relabelling method (here Amnesiac: each forget image gets a random wrong label) fine-tunes the model
# on something false about the forget samples. The paper's Fig. 1 shows what follows: the forget
# accuracy (FA) falls to the retrained model's level, and then keeps falling. In this assignment you
# measure this yourself: record FA after every epoch for a relabelling baseline and for NatMU, plot both
# against Retrain, summarise each curve, and explain the difference.
#
# **Learning goals**: use the benchmark runner's per-epoch callback; turn curves into the two numbers
# that matter (when a method reaches Retrain, and how far below it goes); explain over-forgetting in
# your own words.
#
# **Time**: about 45 minutes, of which about a minute of training on a laptop CPU.
# **Graded**: the functions `make_fa_callback`, `first_crossing`, `overforgetting` (autograder); the
# figure and your explanation (by your instructor).

# %%
# Parameters
SETTING = "default"
SCENARIO = "random-1%"
SEED = 0
BASELINE = "amnesiac"  # or "badteacher", "salun"
EPOCHS = 6
# one learning rate for both methods, so that only the unlearning instances differ
LR = 3e-3

# %%
import pandas as pd

import natmu_lite as nl
from natmu_lite import plots
from natmu_lite.runs import experiment

exp = experiment(SETTING, SCENARIO, seed=SEED)
x_f, y_f = exp.data.train_x[exp.split.forget], exp.data.train_y[exp.split.forget]
retrain_fa = nl.metrics.accuracy(nl.predict(exp.retrained, x_f), y_f)
print(f"{exp.split}; Retrain's forget accuracy: {retrain_fa:.1f}%")

# %% [markdown]
# ## Exercise 1: a per-epoch callback
#
# `Experiment.run` (and every method) accepts `callback=fn`, called as `fn(epoch, model)` after each
# epoch of unlearning. Write `make_fa_callback(curve, images, labels)`: it returns such a function,
# which appends the model's accuracy on `images` (in percent, as `nl.metrics.accuracy` gives it) to the
# list `curve`.

# %%
def make_fa_callback(curve: list, images, labels):
    """A callback(epoch, model) that appends the model's accuracy (%) on images/labels
    to curve."""
    ### BEGIN SOLUTION
    def record(epoch, model):
        curve.append(nl.metrics.accuracy(nl.predict(model, images), labels))

    return record
    ### END SOLUTION


# %% [markdown]
# ## Exercise 2: two numbers per curve
#
# `first_crossing(curve, reference)`: the first epoch (counting from 1) at which the curve is at or below
# `reference`, or `None` if it never is. `overforgetting(curve, reference)`: how many points the curve's
# lowest value lies below `reference` (0 if it never goes below).

# %%
def first_crossing(curve: list[float], reference: float) -> int | None:
    """The first epoch (1-based) with curve[epoch - 1] <= reference, or None."""
    ### BEGIN SOLUTION
    return next((i + 1 for i, v in enumerate(curve) if v <= reference), None)
    ### END SOLUTION


def overforgetting(curve: list[float], reference: float) -> float:
    """How far (points) the lowest value of the curve lies below reference; 0 if never
    below."""
    ### BEGIN SOLUTION
    return max(0.0, reference - min(curve))
    ### END SOLUTION


# %%
assert (first_crossing([95, 90, 80, 70], 85) == 3
        and first_crossing([95, 90], 85) is None)
assert overforgetting([95, 70, 80], 85) == 15 and overforgetting([95, 90], 85) == 0
print("first_crossing and overforgetting pass the examples")

# %% [markdown]
# ## Exercise 3: the curves
#
# Run `BASELINE` and `"natmu"` with `exp.run(...)` for `EPOCHS` epochs at learning rate `LR` (pass
# `recipe_changes={"lr": LR, "epochs": EPOCHS}`, `seed=SEED` and `progress=False`), recording FA on the
# forget set with your callback into `fa[method]`. The plot follows.

# %%
fa = {}  # method -> forget accuracy after each epoch
### BEGIN SOLUTION
for method in (BASELINE, "natmu"):
    fa[method] = []
    exp.run(method, seed=SEED, progress=False,
            recipe_changes={"lr": LR, "epochs": EPOCHS},
            callback=make_fa_callback(fa[method], x_f, y_f))
### END SOLUTION
ax = plots.curves(fa, retrain_fa,
                  title=f"{SCENARIO} on {SETTING}: forget accuracy per epoch")

# %%
summary = {m: {"reaches Retrain at epoch": first_crossing(c, retrain_fa),
               "lowest FA": min(c),
               "points below Retrain": overforgetting(c, retrain_fa), "final FA": c[-1],
               "final gap to Retrain": c[-1] - retrain_fa} for m, c in fa.items()}
pd.DataFrame.from_dict(summary, orient="index").astype(
    {"reaches Retrain at epoch": "Int64"}).round(1)

# %% [markdown]
# ## Exercise 4: explain the difference
#
# In a few sentences, using your figure and table: what happens to each method's FA as training goes
# on, why does the relabelling baseline not stop at Retrain's level, and why does NatMU behave
# differently? Why is "stop at the right epoch" not a practical fix?
#
# ### BEGIN SOLUTION
# The baseline's FA falls epoch after epoch: it reaches Retrain's level early and keeps going down,
# ending well below it (the table gives the epoch and the distance). Its unlearning instances are
# forget images with random wrong labels, which contradict everything the remaining data teaches; the
# longer it trains, the better the model fits these false labels, so it does not merely drop what it
# memorised about the forget samples but learns to misclassify them, which a retrained model (that
# generalises to most of them, hence its high FA) would not do. NatMU's curve levels off instead of
# falling through Retrain's level: each blend is labelled with the class of the remaining image it
# truly contains, so fitting the instances better never requires misclassifying the forget image
# itself, and the fine-tuning has nothing false to reinforce. Where NatMU levels off (its final gap in
# the table) is set by how much forget content the blends carry ($\delta$) and the learning rate, not
# by when training stops.
# Stopping the baseline at the crossing epoch would need the retrained model to know where that epoch
# is, and the epoch changes with the method, the learning rate and the forget set.
#
# **Grading** (5 points): *figure*, 1 for a correct figure (both curves, Retrain's line); *curves
# described*, 1 for describing the curves with the table's numbers (the baseline crosses Retrain's FA and
# keeps falling, NatMU levels off); *mechanism*, 2 for the mechanism (random labels conflict with
# $\mathcal{D}^r$ and are reinforced, so the model learns to misclassify the forget samples; NatMU's
# labels are true for the image they label, so there is nothing false to reinforce); *early stopping*, 1
# for why early stopping is not a fix (finding the epoch needs Retrain; it moves with method, learning
# rate and forget set).
# ### END SOLUTION
