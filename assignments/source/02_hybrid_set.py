# ruff: noqa: E402
# The source of assignment 2 (see assignments/build.py): solutions between the BEGIN/END SOLUTION lines.

# %% [markdown]
# # Assignment 2: relevant labels and the hybrid set
#
# NatMU builds its unlearning instances in three steps (paper Sec. 2.3): for each forget sample it takes
# the original model's top-$n$ classes other than the true one (**relevant labels**), draws one
# remaining image of each of those classes, never the same image twice (**remaining samples**), and
# blends the two (assignment 1). Each blend is labelled with the class of its remaining image. In this
# assignment you write the first two steps and put the three together into the hybrid set.
#
# **Learning goals**: turn a model's predictions into relevant labels; handle a resource constraint
# (each class can give away only so many images) without breaking the method's promises (the new
# labels are distinct and never the true one); assemble the unlearning instances NatMU fine-tunes on.
#
# **Time**: about 60 minutes. **Graded functions**: `reassign_labels`, `draw_retain`,
# `build_unlearning_set`.

# %%
# Parameters
SETTING = "default"
SCENARIO = "random-1%"
SEED = 0
N_LABELS = 4  # relevant labels per forget sample (the paper's n)

# %%
import pandas as pd
import torch

import natmu_lite as nl
from natmu_lite import plots
from natmu_lite.methods.natmu import UnlearningSet, label_cap
from natmu_lite.runs import experiment
from natmu_lite.setting import make_scenario_split

exp = experiment(SETTING, SCENARIO, seed=SEED)
classes = exp.data.classes
x_f, y_f = exp.data.train_x[exp.split.forget], exp.data.train_y[exp.split.forget]
probs = nl.predict(exp.original, x_f).softmax(1)
print(exp.split)

# %% [markdown]
# ## Exercise 1: relevant labels
#
# `probs` has one row of class probabilities per forget sample. Return, for each sample, its `n`
# most probable classes *other than its true class*, in descending order of probability (the label of
# rank $j$ goes with mask $m_j$), as a long tensor of shape `(N, n)`.
#
# The official code also caps how often one class may be used over the whole forget set, since each
# use takes one remaining image of that class. With `caps` (a tensor with one limit per class) serve
# the samples in order, and when a class is full, skip it for that sample's next-ranked class, so that
# the labels stay distinct and never the true one. If a sample cannot get `n` labels, raise a
# `ValueError`.

# %%
def reassign_labels(probs: torch.Tensor, true_labels: torch.Tensor, n: int = 4,
                    caps: torch.Tensor | None = None) -> torch.Tensor:
    """Each sample's top-n classes by probability, its true class excluded;
    shape (N, n)."""
    ### BEGIN SOLUTION
    masked = probs.float().clone()
    masked[torch.arange(len(probs)), true_labels] = -1.0  # the true class ranks last
    ranking = masked.argsort(dim=1, descending=True)[:, :-1]
    if caps is None:
        return ranking[:, :n].clone()
    used, out = [0] * probs.shape[1], []
    for i, row in enumerate(ranking.tolist()):
        chosen = [c for c in row if used[c] < caps[c]][:n]
        if len(chosen) < n:
            raise ValueError(f"sample {i}: fewer than {n} classes have images left")
        for c in chosen:
            used[c] += 1
        out.append(chosen)
    return torch.tensor(out, dtype=torch.long)
    ### END SOLUTION


# %% [markdown]
# Compare with the package on this forget set, without and with a cap small enough to bite:

# %%
mine = reassign_labels(probs, y_f, N_LABELS)
assert torch.equal(mine, nl.reassign_labels(probs, y_f, N_LABELS)), (
    "the labels differ from the package's")
tight = torch.full((exp.data.num_classes,),
                   len(y_f) * N_LABELS // (exp.data.num_classes - 2))
capped = reassign_labels(probs, y_f, N_LABELS, tight)
assert torch.equal(capped, nl.reassign_labels(probs, y_f, N_LABELS, tight)), (
    "the capped labels differ")
print(f"a cap of {tight[0]} uses per class changes the labels of "
      f"{(capped != mine).any(1).sum()} of {len(y_f)} forget samples")
pd.DataFrame({"true class": [classes[int(c)] for c in y_f[:6]],
              **{f"label {j + 1}": [classes[int(c)] for c in mine[:6, j]]
                 for j in range(N_LABELS)}})

# %% [markdown]
# ## Exercise 2: remaining samples
#
# `requested` holds one class per blend (the flattened labels); `retain_labels` the labels of
# $\mathcal{D}^r$. Return, for each request, a *position* in `retain_labels` holding that class, such that
# no position is used twice, chosen at random with `generator` (so that a seed fixes the draw). If a
# class is requested more often than $\mathcal{D}^r$ holds images of it, raise a `ValueError` (the
# official sampler loops forever instead).

# %%
def draw_retain(requested: torch.Tensor, retain_labels: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    """For each requested class, a distinct random position in D_r holding that
    class."""
    ### BEGIN SOLUTION
    out = torch.empty_like(requested)
    for c in requested.unique().tolist():
        want = (requested == c).nonzero().flatten()
        pool = (retain_labels == c).nonzero().flatten()
        if len(want) > len(pool):
            raise ValueError(f"class {c} is requested {len(want)} times but D_r holds "
                             f"{len(pool)} images of it")
        out[want] = pool[torch.randperm(len(pool), generator=generator)[: len(want)]]
    return out
    ### END SOLUTION


# %%
retain_y = exp.data.train_y[exp.split.retain]
pos = draw_retain(mine.flatten(), retain_y, torch.Generator().manual_seed(SEED))
assert torch.equal(retain_y[pos], mine.flatten()), "a drawn image has the wrong class"
assert len(pos.unique()) == len(pos), "an image was drawn twice"
print(f"{len(pos)} distinct remaining images, each of the requested class")

# %% [markdown]
# ## Exercise 3: the hybrid set
#
# Put it together with the package's signature. The first lines (given) decide the cap as the
# official code does (on in random forgetting, `int(0.98 |D_r| / K)` per class, and never more than
# $\mathcal{D}^r$ holds). Write the rest: the labels, the remaining images (seeded with `seed`), and for
# blend $i$ the forget sample it comes from (`forget_pos`, a position in `split.forget`: sample 0 four
# times, then sample 1, ...), its mask (`mask_id`: the rank of its label, $0, 1, 2, 3, 0, 1, \dots$),
# the masks (`nl.natmu_masks` of the image size with `delta`), the index of its remaining image in the
# training set (`retain_index`), and the blended images (`nl.blend`).

# %%
def build_unlearning_set(original, data, split, *, delta: float = 0.0, n: int = 4,
                         cap: bool | None = None, seed: int = 0) -> UnlearningSet:
    """NatMU's unlearning instances: blends of forget and relevant remaining images,
    with their labels."""
    n = min(n, data.num_classes - 1)
    cap = split.kind == "random" if cap is None else cap
    retain_y = data.train_y[split.retain]
    probs = nl.predict(original, data.train_x[split.forget]).softmax(1)
    supply = torch.bincount(retain_y, minlength=data.num_classes)
    caps = (supply.clamp(max=label_cap(len(split.retain), data.num_classes)) if cap
            else supply)
    ### BEGIN SOLUTION
    labels = reassign_labels(probs, data.train_y[split.forget], n, caps).flatten()
    retain_index = split.retain[draw_retain(labels, retain_y,
                                               torch.Generator().manual_seed(seed))]
    forget_pos = torch.arange(len(split.forget)).repeat_interleave(n)
    mask_id = torch.arange(n).repeat(len(split.forget)) % 4
    masks = nl.natmu_masks(data.shape[1], data.shape[2], delta)
    images = nl.blend(data.train_x[split.forget[forget_pos]],
                      data.train_x[retain_index], masks[mask_id])
    ### END SOLUTION
    return UnlearningSet(images, data.train_y[retain_index], forget_pos, retain_index,
                         mask_id, masks)


# %%
uset = build_unlearning_set(exp.original, exp.data, exp.split, n=N_LABELS, seed=SEED)
ref = nl.build_unlearning_set(exp.original, exp.data, exp.split, n=N_LABELS, seed=SEED)
for field in ("labels", "forget_pos", "mask_id", "masks"):
    assert torch.equal(getattr(uset, field), getattr(ref, field)), (
        f"{field} differs from the package's")
print(f"{len(uset.images)} hybrid instances; labels, masks and pairing agree with "
      "the package")
first = range(3)
n = len(uset.labels) // len(y_f)
grid = [img for i in first for img in (x_f[i], *uset.images[n * i: n * i + n])]
titles = [t for i in first
          for t in (f"forget: {classes[int(y_f[i])]}",
                    *(f"→ {classes[int(c)]}" for c in uset.labels[n * i: n * i + n]))]
fig = plots.image_grid(torch.stack(grid), titles, cols=n + 1)

# %% [markdown]
# ## Does the cap matter?
#
# How often is each class asked for, against the official cap, at 1% and at 10% forgetting? (Only the
# split is needed, not a new model.)

# %%
rows = {}
for name in ("random-1%", "random-10%"):
    split = make_scenario_split(exp.setting, exp.data, name)
    p = nl.predict(exp.original, exp.data.train_x[split.forget]).softmax(1)
    wanted = torch.bincount(
        reassign_labels(p, exp.data.train_y[split.forget], N_LABELS).flatten(),
        minlength=exp.data.num_classes)
    cap = label_cap(len(split.retain), exp.data.num_classes)
    rows[name] = {"cap per class": cap,
                  "most-asked class": classes[int(wanted.argmax())],
                  "times asked": int(wanted.max()),
                  "classes over the cap": int((wanted > cap).sum())}
pd.DataFrame.from_dict(rows, orient="index")

# %% [markdown]
# ## Questions
#
# 1. Why must the new labels exclude the true class, and why take the *most probable* other classes
#    rather than random ones?
# 2. Why should no remaining image be used in two blends?
# 3. Does the official cap change any label on this setting? When would it?
#
# ### BEGIN SOLUTION
# 1. A blend labelled with the forget sample's true class would teach the model to keep recognising
#    the forget content, the opposite of unlearning. The most probable other classes are the ones the
#    forget image already resembles in the model's view (a shirt's runners-up are T-shirt, pullover,
#    coat): a blend of the shirt with a pullover, labelled pullover, is close to what a model that
#    never saw the shirt would say, so the instance is natural and true. A random label (say, "ankle
#    boot") would be a large, unnatural push, which is what makes relabelling methods over-forget.
# 2. Each blend's label is true because of the remaining image in it; reusing one image would give it
#    extra weight in fine-tuning (and, in the official sampler, exhausting a class is what makes it loop
#    forever). Distinct images spread the correct information over as much of $\mathcal{D}^r$ as possible.
# 3. On the default setting no class is asked for more often than its cap, at 1% or at 10% forgetting
#    (last table), so the cap changes nothing there. It binds when many forget samples share the same
#    runners-up and the forget set is large next to the classes' supply: a large random forget set on a
#    dataset with few images per class, or a model whose rankings concentrate on a few classes (the
#    tight cap above shows the fall-through at work). In class scenarios the official code uses no cap,
#    and only the supply of $\mathcal{D}^r$ limits a class.
#
# **Grading** (1 point per question): 1. the true class would teach the model to keep the forget content,
# and the most probable other classes keep the instances natural; 2. a reused image would weigh double;
# 3. the cap binds only when many samples want the same classes, and does not on the default.
# ### END SOLUTION
