"""``install_as_pykeops()``: run unedited code that imports ``pykeops`` on lazykernels.

Libraries built on KeOps (GeomLoss, GPyTorch, TorchDR...) import ``pykeops`` themselves;
their users cannot change that line. :func:`install_as_pykeops` puts an import hook first in
``sys.meta_path`` that answers every ``pykeops`` module of :data:`PYKEOPS_MODULES` with its
lazykernels counterpart: ``import pykeops.torch`` gives a :class:`KeOpsModule` whose names
are those of ``lazykernels.torch`` (the same objects, so ``isinstance`` checks agree);
``pykeops.__version__`` is :data:`KEOPS_VERSION`, the KeOps version whose API this is. A
``pykeops`` module outside the table raises ``ModuleNotFoundError`` naming it. The hook
takes precedence over an installed KeOps, but it cannot replace modules already imported:
if the real ``pykeops`` is in ``sys.modules``, installing refuses with
:class:`~lazykernels.errors.CompatibilityError`. Call it first, before importing those
libraries. It is opt-in and process-wide; nothing is installed by ``import lazykernels``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Mapping
from types import MappingProxyType, ModuleType

from .errors import CompatibilityError


def _front_end(name: str) -> dict[str, str]:
    """The module paths of one KeOps front end (``numpy`` or ``torch``)."""
    keops, ours = f"pykeops.{name}", f"lazykernels.{name}"
    table = {
        keops: ours,
        f"{keops}.utils": f"{ours}.utils",
        f"{keops}.operations": f"{ours}.operations",
        f"{keops}.lazytensor": f"{ours}.lazytensor",
        f"{keops}.lazytensor.LazyTensor": f"{ours}.lazytensor",
        f"{keops}.generic": f"{ours}.genred",
        f"{keops}.generic.generic_red": f"{ours}.genred",
        f"{keops}.generic.generic_ops": f"{ours}.genred",
    }
    for sub in ("", ".grid_cluster", ".matrix", ".utils"):
        table[f"{keops}.cluster{sub}"] = f"{ours}.cluster"
    return table


PYKEOPS_MODULES: Mapping[str, str] = MappingProxyType(
    {
        "pykeops": "lazykernels",
        "pykeops.config": "lazykernels.config",
        "pykeops.common": "lazykernels.common",
        "pykeops.common.utils": "lazykernels.common.utils",
        "pykeops.common.gpu_utils": "lazykernels.common.gpu_utils",
        "pykeops.common.lazy_tensor": "lazykernels.common.lazy_tensor",
        "pykeops.common.operations": "lazykernels.common.operations",
        **_front_end("numpy"),
        **_front_end("torch"),
    }
)
"""Each ``pykeops`` module that the hook answers, and the lazykernels module it gives."""

KEOPS_VERSION = "2.3"
"""``pykeops.__version__`` under the hook: the KeOps API lazykernels implements (SPEC), so
that downstream checks such as ``Version(pykeops.__version__) >= Version("2.0")`` or
``pykeops.__version__.startswith("2.")`` pass. ``lazykernels.__version__`` is unchanged
(it names lazykernels' own release, and keys the kernel cache)."""


class KeOpsModule(ModuleType):
    """A ``pykeops`` module under the hook: its names are those of a lazykernels module.

    Reading an attribute reads the lazykernels module's (the same objects: classes,
    functions); a ``pykeops`` submodule of the table is imported through the hook. Setting
    an existing, non-module attribute (``pykeops.config.verbose = True``) sets it on the
    lazykernels module; a submodule never hides a function of the same name
    (``pykeops.torch.cluster.grid_cluster`` is the function, as in KeOps). The import
    system's own bookkeeping (dunder names, submodules) stays on this object, so
    lazykernels' modules are never modified by imports.
    """

    def __init__(self, name: str, target: ModuleType):
        super().__init__(name, target.__doc__)
        object.__setattr__(self, "_lazykernels_module", target)

    def __getattr__(self, name: str):
        target = self._lazykernels_module
        sub = f"{self.__name__}.{name}"
        if sub in PYKEOPS_MODULES and not hasattr(target, name):
            return importlib.import_module(sub)
        return getattr(target, name)

    def __setattr__(self, name: str, value: object) -> None:
        target = self._lazykernels_module
        if name.startswith("__") or not hasattr(target, name):
            object.__setattr__(self, name, value)
        elif not isinstance(value, ModuleType):
            setattr(target, name, value)
        # else: the import system binding a submodule (pykeops.torch.cluster.grid_cluster)
        # whose name is also a function of the package: the function wins, as in KeOps

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self._lazykernels_module)))


class _KeOpsModuleLoader(importlib.abc.Loader):
    """Creates the :class:`KeOpsModule` of one ``pykeops`` name."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = KeOpsModule(spec.name, importlib.import_module(self.target))
        if spec.name == "pykeops":
            object.__setattr__(module, "__version__", KEOPS_VERSION)
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the lazykernels module is already imported."""


class PykeopsFinder(importlib.abc.MetaPathFinder):
    """The meta path finder of :func:`install_as_pykeops` (first in ``sys.meta_path``)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname != "pykeops" and not fullname.startswith("pykeops."):
            return None
        ours = PYKEOPS_MODULES.get(fullname)
        if ours is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: pykeops is lazykernels in this process "
                f"(lazykernels.install_as_pykeops()), which has no counterpart of that module",
                name=fullname,
            )
        is_package = any(name.startswith(fullname + ".") for name in PYKEOPS_MODULES)
        loader = _KeOpsModuleLoader(ours)
        return importlib.util.spec_from_loader(fullname, loader, is_package=is_package)


def _installed() -> PykeopsFinder | None:
    return next((f for f in sys.meta_path if isinstance(f, PykeopsFinder)), None)


def install_as_pykeops() -> None:
    """Make ``import pykeops`` (and its submodules) import lazykernels, in this process.

    Call it before anything imports ``pykeops``; calling it again does nothing.

    Raises:
        CompatibilityError: the real ``pykeops`` (or one of its modules) is already
            imported: its modules cannot be replaced any more.

    Example:
        >>> import lazykernels
        >>> lazykernels.install_as_pykeops()  # doctest: +SKIP
        >>> from pykeops.torch import LazyTensor  # lazykernels.torch.LazyTensor  # doctest: +SKIP
    """
    if _installed() is not None:
        return
    loaded = [
        name
        for name, module in list(sys.modules.items())
        if (name == "pykeops" or name.startswith("pykeops."))
        and not isinstance(module, KeOpsModule)
    ]
    if loaded:
        origin = getattr(sys.modules.get(loaded[0]), "__file__", None) or "unknown location"
        raise CompatibilityError(
            f"install_as_pykeops(): the real KeOps is already imported ({loaded[0]} from "
            f"{origin}); call lazykernels.install_as_pykeops() before anything imports "
            f"pykeops (GeomLoss, GPyTorch... import it when they are imported)"
        )
    sys.meta_path.insert(0, PykeopsFinder())


__all__ = ["KEOPS_VERSION", "PYKEOPS_MODULES", "KeOpsModule", "PykeopsFinder", "install_as_pykeops"]
