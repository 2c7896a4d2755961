"""The fair benchmark: every method tuned with the same budget on held-out requests, its choice re-checked
before it counts, then evaluated on the tables' requests over five seeds, each seed with its own
original model.

Why: choosing a method's parameters on the very request (and seed) it is scored on flatters that method, one
seed cannot tell a ranking from noise, and one original model shared by every seed hides how much the
starting model matters. So, for each scenario of a protocol:

1. **Tune** each method (Retrain excepted) in an Optuna study of exactly :data:`TRIALS` completed
   trials on the scenario's first *validation replica*: a random forget set drawn with another split
   seed, or a class that is not in the table (``Setting.validation``), with an original model, Retrain
   and run seed of its own (:data:`VALIDATION_SEEDS`). Every study uses the same TPE seed and starts from
   the setting's values (trial 0). A trial's score is its AvgGap to Retrain.
2. **Select** (:mod:`natmu_lite.selection`): the study's best trials and its trial 0 run again on the
   other validation replicas (other requests, originals and seeds); the parameters with the lowest mean
   AvgGap over all replicas win, unless their model collapsed or did nothing. Every method gets the same
   number of replica runs.
3. **Evaluate** on the test requests (``Setting.table_classes`` for class scenarios, the setting's forget set
   for random ones) with seeds 0-4. Seed s has its own original model (initialised and trained with seed
   s), Retrain from the same initialisation, and the unlearning runs start from it. Variants: ``tuned``
   (the selected parameters), ``single-stage`` (the study's best trial, the choice without re-checking),
   ``untuned`` (the setting's values), ``transfer`` for random 1% (random 10%'s selected parameters: the
   paper's Fig. 4 question), and ``best of 8``/``best of 16`` (the best trial within a smaller budget)
   for the :data:`BUDGET_METHODS` best methods of each scenario, for the budget figure. Each test request
   and seed also has a second Retrain (another run seed): the floor of :mod:`natmu_lite.decisions`.
4. **Decide, adding seeds where undecided**: after the five seeds, the comparisons with NatMU that
   :mod:`natmu_lite.decisions` cannot decide get more seeds, five at a time, up to its last look.
5. **Replicate** (:func:`replication_plan`): every method, with its chosen parameters untouched, on an
   independent training subset and on requests no table or replica uses, over :data:`REPLICATION_SEEDS`.

All runs of an export happen on one device, precision and torch version: :func:`natmu_lite.export.export`
refuses a storage that mixes them. All state lives in one Optuna storage (SQLite here, PostgreSQL to
share): the tuning studies, and one study of queued trials per kind of run (:data:`QUEUES`)
which workers pop atomically, with heartbeats so that a dead worker's run is queued again. The original
models are pinned beside a SQLite storage (:func:`natmu_lite.cache.pinned_original`), so that a protocol
resumed on another machine starts from the same models. Start :meth:`Protocol.work` in as many processes or
machines as you like (``natmu-lite protocol --workers N``); :func:`natmu_lite.export.export` writes the finished
results, with their provenance, as JSON.

The package, one concern a module: :mod:`.design` (the numbers, the plans, the runs' names), :mod:`.studies`
(tuning and its budget), :mod:`.choice` (re-checking each study's choice), :mod:`.runs` (every run and its
parameters), :mod:`.queue` (the job queue on Optuna), :mod:`.work` (the workers) and :mod:`.core` (the
:class:`Protocol` they make up, its models, one run's result).
"""

from ..results import tuned_params
from .core import Protocol
from .design import (
    BUDGET_METHODS,
    BUDGETS,
    PROTOCOL_METHODS,
    PROTOCOLS,
    QUEUES,
    REPLICATION_SEEDS,
    RETRIES,
    SAMPLER_SEED,
    SECOND_RUN_SEED,
    SEEDS,
    TEST_PHASE,
    TRANSFER,
    TRIALS,
    VALIDATION_SEEDS,
    VARIANTS,
    Plan,
    RunKey,
    default_storage,
    plan,
    plans,
    protocol_methods,
    replication_plan,
)
from .queue import run_rows
from .studies import best_within_budget, budget_trials, candidates, next_round

__all__ = ["BUDGET_METHODS", "BUDGETS", "PROTOCOL_METHODS", "PROTOCOLS", "QUEUES", "REPLICATION_SEEDS", "RETRIES",
           "SAMPLER_SEED", "SECOND_RUN_SEED", "SEEDS", "TEST_PHASE", "TRANSFER", "TRIALS", "VALIDATION_SEEDS",
           "VARIANTS", "Plan", "Protocol", "RunKey", "best_within_budget", "budget_trials", "candidates",
           "default_storage", "next_round", "plan", "plans", "protocol_methods", "replication_plan", "run_rows",
           "tuned_params"]
