"""Names of a package loaded from its modules on first use (PEP 562), so that importing the
package costs nothing until a name is read."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any


def lazy_names(package: str, homes: Mapping[str, Sequence[str]], namespace: dict[str, Any]):
    """``(__getattr__, __dir__, __all__)`` for ``package``, whose names live in the modules
    ``homes`` lists them under; a loaded name is kept in ``namespace`` (its globals)."""
    where = {name: module for module, names in homes.items() for name in names}
    names = sorted(where)

    def getattr_(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return names

    return getattr_, dir_, names
