# ruff: noqa: E402
# The source of assignment 5 (see assignments/build.py): solutions between the BEGIN/END SOLUTION lines.

# %% [markdown]
# # Assignment 5 (optional): membership inference
#
# A model usually behaves differently on the images it was trained on: it is more confident and its
# loss is lower. A *membership-inference attack* (MIA) exploits this to guess which images were in the
# training set. The paper's MIA metric (from SSD and BadTeacher) fits a one-feature logistic regression
# on the softmax *entropy*, with the remaining training images as members and the test images as
# non-members, and reports the percentage of forget images it calls members. A model that never saw
# the forget set (Retrain) still calls some of them members, since many are easy; so the target of
# unlearning is Retrain's value, not 0. In this assignment you write that attack and a loss-based one,
# and compare them on the original and the retrained model.
#
# **Learning goals**: see what MIA measures and why its target is Retrain's value; build an attack
# with scikit-learn; compare two attack features.
#
# **Time**: about 45 minutes; no training. **Graded functions**: `entropy`, `mia_entropy`, `mia_loss`.

# %%
# Parameters
SETTING = "default"
SCENARIO = "random-1%"
SEED = 0

# %%
import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

import natmu_lite as nl
from natmu_lite.runs import experiment

exp = experiment(SETTING, SCENARIO, seed=SEED)
print(exp.split)

# %% [markdown]
# ## Exercise 1: the entropy attack
#
# `entropy(probs)`: the Shannon entropy (in nats) of each row of a probability matrix, with
# $0 \log 0 = 0$ (clamp the probabilities to at least `1e-12` before the log).
#
# `mia_entropy(retain_probs, forget_probs, test_probs)`: fit
# `LogisticRegression(class_weight="balanced", solver="lbfgs")` on one feature, the entropy, with the
# retain rows labelled 1 (members) and the test rows 0 (non-members); return the percentage (0 to 100)
# of forget rows it predicts to be members. Use float64 numpy arrays of shape `(N, 1)` as features.

# %%
def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of a probability matrix."""
    ### BEGIN SOLUTION
    return -(probs * probs.clamp_min(1e-12).log()).sum(1)
    ### END SOLUTION


def mia_entropy(retain_probs: torch.Tensor, forget_probs: torch.Tensor,
                test_probs: torch.Tensor) -> float:
    """% of forget samples an entropy-threshold attack (fit on retain = member vs
    test = non-member) calls members."""
    ### BEGIN SOLUTION
    feats = [entropy(p).double().numpy()[:, None]
             for p in (retain_probs, test_probs, forget_probs)]
    x = np.concatenate(feats[:2])
    y = np.concatenate([np.ones(len(feats[0])), np.zeros(len(feats[1]))])
    attack = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(attack.predict(feats[2]).mean() * 100)
    ### END SOLUTION


# %% [markdown]
# ## Exercise 2: a loss attack
#
# The same attack with another feature: the cross-entropy loss of each sample under its true label,
# $-\log p_y$ (clamp $p_y$ to at least `1e-12`). The labels come after each probability matrix.

# %%
def mia_loss(retain_probs: torch.Tensor, retain_labels: torch.Tensor,
             forget_probs: torch.Tensor, forget_labels: torch.Tensor,
             test_probs: torch.Tensor, test_labels: torch.Tensor) -> float:
    """% of forget samples a loss-threshold attack (fit on retain = member vs
    test = non-member) calls members."""
    ### BEGIN SOLUTION
    def loss(p, y):
        return -p.gather(1, y[:, None]).clamp_min(1e-12).log().double().numpy()

    feats = [loss(retain_probs, retain_labels), loss(test_probs, test_labels),
             loss(forget_probs, forget_labels)]
    x = np.concatenate(feats[:2])
    y = np.concatenate([np.ones(len(feats[0])), np.zeros(len(feats[1]))])
    attack = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(attack.predict(feats[2]).mean() * 100)
    ### END SOLUTION


# %% [markdown]
# ## Exercise 3: original against retrained
#
# Both attacks on both models (no training: the models come from the cache). The package's `evaluate`
# reports the entropy attack as `MIA`; yours should agree with it.

# %%
d, s = exp.data, exp.split
rows = {}
for name, model in [("original", exp.original), ("retrained", exp.retrained)]:
    train, test = (nl.predict(model, d.train_x).softmax(1),
                   nl.predict(model, d.test_x).softmax(1))
    rows[name] = {
        "entropy MIA (yours)": mia_entropy(train[s.retain], train[s.forget], test),
        "entropy MIA (package)": nl.evaluate(model, d, s)["MIA"],
        "loss MIA (yours)": mia_loss(train[s.retain], d.train_y[s.retain],
                                     train[s.forget], d.train_y[s.forget],
                                     test, d.test_y),
        "mean forget entropy": entropy(train[s.forget]).mean().item(),
        "mean test entropy": entropy(test).mean().item(),
    }
pd.DataFrame(rows).T.round(2)

# %% [markdown]
# ## Question
#
# Which attack separates the original model (which trained on the forget set) from the retrained one
# (which did not) more clearly in your table, and why might that be? What value should an unlearned
# model reach on each?
#
# ### BEGIN SOLUTION
# The attack whose value changes more between the original and the retrained row separates them more
# clearly (read it off the table). The loss feature uses the true label, so it sees directly whether a
# forget image is *memorised* (near-zero loss) or merely easy; the entropy feature only sees confidence,
# and a confident wrong or confident easy prediction looks like a member too. Since a model that
# never saw the forget set still calls many of its (easy) images members, the target for an unlearned
# model is the retrained model's value under each attack, not 0; a value far below it is itself a sign
# of over-forgetting (the forget images look *less* familiar than unseen test images).
#
# **Grading** (2 points, *question*): which attack separates original from retrained more in their table,
# with a plausible reason (1); the target is Retrain's value, not 0 (1).
# ### END SOLUTION
