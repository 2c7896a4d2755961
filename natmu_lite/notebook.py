"""What the book's chapters call besides the package's science: values for the prose, and where a
chapter runs. They work alike in the book build, on Colab and in plain Jupyter.

The book build (Jupyter Book, myst-nb) puts computed values into the prose with ``glue`` (a Markdown
cell says ``{glue:text}`name:.1f```); myst-nb is a tool of the book, not a dependency of the package,
so where it is not installed (Colab, a plain ``pip install``) :func:`glue` shows each value in the
cell's output instead, under the name the prose uses.
"""

from __future__ import annotations

import torch

from . import __version__
from .train import PRECISIONS, default_device, precision


def glue(name: str, value, display: bool = False) -> None:
    """Give ``value`` a name the chapter's Markdown can use: myst-nb's ``glue`` in the book build;
    elsewhere the value is printed (a figure is shown) so that a reader finds it under that name."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if hasattr(value, "savefig"):  # a figure: show it where it was made
            from IPython.display import display as show

            show(value)
        else:
            print(f"{name} = {value:.4g}" if isinstance(value, float) else f"{name} = {value}")
        return
    myst_glue(name, value, display=display)


def where() -> str:
    """One line on where the chapter runs, which every notebook prints first (its install cell): the
    device and the precision training uses there (:func:`natmu_lite.train.precision` decides)."""
    device = default_device()
    if device.type == "cuda":
        capability = ".".join(map(str, torch.cuda.get_device_capability(device)))
        name = f"{torch.cuda.get_device_name(device)}, compute capability {capability}"
    else:
        name = f"{torch.get_num_threads()} CPU threads"
    arithmetic = precision(device)
    why = " (no native bf16 on this GPU)" if arithmetic == "fp16" else ""
    return (f"natmu-lite {__version__} running on {device.type} ({name}), training in "
            f"{PRECISIONS[arithmetic]}{why}, torch {torch.__version__}")


def glue_figure(name: str, fig) -> None:
    """A figure for the page's numbered ``{glue:figure}`` directive (caption, alt text, a name the
    prose refers to): glued, then closed so that the cell does not show it a second time. Without
    myst-nb (Colab, plain Jupyter) it is shown where it was made."""
    import matplotlib.pyplot as plt

    glue(name, fig)
    plt.close(fig)
