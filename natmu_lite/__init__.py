"""natmu-lite: Towards Natural Machine Unlearning (He et al. 2024), reproduced and taught."""

from .datasets import Dataset, load_dataset
from .methods import METHODS
from .methods.natmu import blend, build_unlearning_set, natmu_masks, reassign_labels
from .metrics import avg_gap, evaluate, kl_to_model, mia_entropy, pfa
from .models import MODELS, build_model, model_for
from .splits import KINDS, Split, make_split
from .train import Recipe, fit, predict, train_original

__version__ = "0.1.0"


def __getattr__(name: str):
    """``nl.tables``, ``nl.stats``, ``nl.plots``...: a submodule is imported when first used as an attribute
    of the package (importing them all up front would slow every import down)."""
    import importlib

    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
__all__ = [
    "KINDS", "METHODS", "MODELS", "Dataset", "Recipe", "Split", "avg_gap", "blend", "build_model",
    "build_unlearning_set", "evaluate", "fit", "kl_to_model", "load_dataset", "make_split", "mia_entropy",
    "model_for", "natmu_masks", "pfa", "predict", "reassign_labels", "train_original",
]
