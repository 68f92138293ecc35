"""Package exports that load on first use (PEP 562).

`from app.training import train_and_log` still works, but importing one module of the package
(the API imports `app.training.models`) no longer loads its siblings (`fit`, `tracking`, and
torch with them). A package lists where each name lives; `exports` gives it `__getattr__` and
`__all__`. One trap: a name must not also be a submodule's (`app.data` exports a function `dvc`
from its module `dvc`): once that submodule is imported, the module would answer for the name.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def exports(package: str, where: dict[str, list[str]]) -> tuple[Callable[[str], Any], list[str]]:
    """`__getattr__` and `__all__` for `package`, from {module: [the names it exports]}."""
    module_of = {name: module for module, names in where.items() for name in names}
    assert not module_of.keys() & where.keys(), "a name that is also a module's is shadowed"

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module_of[name]}"), name)

    return __getattr__, sorted(module_of)
