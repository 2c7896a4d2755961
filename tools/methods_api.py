"""The book's list of methods, made from the registry when the book is built (a Sphinx extension that
_config.yml loads): in book/api.md, ``.. registered-methods::`` documents the module of every registered
method of the package, in the book's order, so that a new method's file appears there with no edit of
its own. ``:exclude:`` names modules documented elsewhere on the page (NatMU's, with its helpers)."""

from __future__ import annotations

from docutils.nodes import Node
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def method_modules() -> list[str]:
    """The package's modules that register a method, in the book's order (a module once, at its first)."""
    from natmu_lite.methods import METHOD_ORDER, METHODS
    from natmu_lite.methods.base import spec

    modules = dict.fromkeys(spec(m).fn.__module__ for m in METHOD_ORDER if m in METHODS)
    return [m for m in modules if m.startswith("natmu_lite.")]  # not a user's file the builder happens to load


class RegisteredMethods(SphinxDirective):
    option_spec = {"exclude": directives.unchanged}

    def run(self) -> list[Node]:
        skip = set(self.options.get("exclude", "").split())
        rst = "\n".join(f".. automodule:: {m}\n   :members:\n" for m in method_modules() if m not in skip)
        return self.parse_text_to_nodes(rst)


def setup(app: Sphinx) -> dict:
    app.add_directive("registered-methods", RegisteredMethods)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
