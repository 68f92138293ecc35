"""Package exports that load on first use (PEP 562).

`from app.data import load_split` still works, but importing one module of a package (the API
imports `app.data.images`) no longer loads its siblings (`app.data.build`, and scikit-learn with
it). A package lists where each name lives; `exports` gives it `__getattr__` and `__all__`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def exports(package: str, where: dict[str, list[str]]) -> tuple[Callable[[str], Any], list[str]]:
    """`__getattr__` and `__all__` for `package`, from {module: [the names it exports]}."""
    module_of = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module_of[name]}"), name)

    return __getattr__, sorted(module_of)
