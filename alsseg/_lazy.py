"""Lazy package exports (PEP 562): names are imported from their module on first use.

Keeps ``import alsseg.io`` / ``alsseg.relax`` / ``alsseg.seg`` light, so ``alsseg --help``
never pulls numpy, nibabel or torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, where: dict[str, tuple[str, ...]], namespace: dict
                 ) -> tuple[list[str], Callable, Callable]:
    """Return ``(__all__, __getattr__, __dir__)`` for a package.

    Args:
        package: the package's name, for error messages.
        where: module name → the public names it defines.
        namespace: the package's ``globals()``; a resolved name is cached there.
    """
    lazy = {name: module for module, names in where.items() for name in names}
    public = sorted(lazy)

    def __getattr__(name: str):
        if name in lazy:
            value = getattr(importlib.import_module(lazy[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(public))

    return public, __getattr__, __dir__
