"""What the book's chapters call besides the package's science: values for the prose, and where a
chapter runs. They work alike in the book build, on Colab and in plain Jupyter.

The book build (Jupyter Book, myst-nb) puts computed values into the prose with ``glue`` (a Markdown
cell says ``{glue:text}`name:.1f```); myst-nb is a tool of the book, not a dependency of the package,
so where it is not installed (Colab, a plain ``pip install``) :func:`glue` shows each value in the
cell's output instead, under the name the prose uses.
"""

from __future__ import annotations

import torch

from .train import default_device


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
    """One line on where the chapter runs: the device and the precision its training uses."""
    device = default_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    return f"running on {device.type} ({name}), training in {precision}, torch {torch.__version__}"
