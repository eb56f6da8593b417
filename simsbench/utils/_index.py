"""A source index of estimator packages, read with :mod:`ast` (nothing imported).

:mod:`simsbench.estimators` resolves ``from simsbench.estimators import TFN``
lazily, so that importing the package imports neither torch nor the model
modules.  Instead of a hand-maintained name -> module table, it reads the
package's module *sources*: every module file under the package's
``__path__`` (subpackages included, found by :func:`pkgutil.iter_modules`
without importing them) is parsed, and its top-level class definitions,
their base classes (resolved through the module's own ``from ... import``
statements), their methods (and which are ``@abstractmethod``) and the
module's top-level imports are recorded.  From that, with the C3
linearisation Python itself uses, the index tells which public classes are
scikit-learn estimators (``BaseEstimator`` in the method resolution order),
regressors or transformers (``RegressorMixin`` / ``TransformerMixin``), which
are abstract (an ``@abstractmethod`` not overridden, the marker
:func:`inspect.isabstract` reads at run time), and which modules need torch
(they import torch, skorch or transformers, directly or through another
module of the package).  :func:`simsbench.utils.discovery.all_estimators`
imports the modules and checks the same facts on the real classes; a test
keeps the two in agreement.

Parsing the ~20 model modules takes about 0.1 s, so the index is built only
for listings (``__all__``, ``dir()``, discovery) and cached per package path;
a single attribute access finds the defining module with a text search
(:func:`modules_defining`).
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

#: Third-party packages whose import makes a module "deep".
DEEP_PACKAGES = frozenset({"torch", "skorch", "transformers"})


@dataclass(frozen=True)
class ClassInfo:
    """One top-level class definition, as read from the source."""

    module: str
    name: str
    bases: tuple[tuple[str, str], ...]  # (module or "", name) of each base (as written:
    # (qualifier, name), until SourceIndex resolves them)
    concrete: frozenset[str]  # methods defined without @abstractmethod
    abstract: frozenset[str]  # methods decorated with @abstractmethod
    mro: tuple[tuple[str, str], ...] = ()
    abc_meta: bool = False  # declares metaclass=ABCMeta (or derives from ABC)

    @property
    def key(self) -> tuple[str, str]:
        return (self.module, self.name)

    @property
    def public(self) -> bool:
        return not self.name.startswith("_")

    def _has(self, name: str) -> bool:
        return any(n == name for _m, n in self.mro)

    @property
    def is_estimator(self) -> bool:
        """``BaseEstimator`` is among its bases (transitively)."""
        return self._has("BaseEstimator")

    @property
    def is_regressor(self) -> bool:
        return self._has("RegressorMixin")

    @property
    def is_transformer(self) -> bool:
        return self._has("TransformerMixin")


@dataclass
class ModuleInfo:
    """One module of the package."""

    name: str
    path: str
    imports: frozenset[str]  # absolute names of the modules imported at top level
    aliases: dict[str, tuple[str, str]]  # local name -> (module, name) from `from m import n`
    module_aliases: dict[str, str]  # local name -> module, from `import m [as n]`
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    needs_torch: bool = False


class SourceIndex:
    """The modules and classes of one package, from their sources.

    Parameters
    ----------
    package : str
        The package's import name (``"simsbench.estimators"``).
    path : tuple of str
        Its ``__path__`` (or, for a plain module, the one file).
    """

    def __init__(self, package: str, path: tuple[str, ...]):
        self.package = package
        self.modules: dict[str, ModuleInfo] = {}
        for name, file in _walk(package, path):
            self.modules[name] = _read_module(name, file)
        self._resolve()

    # -- queries ------------------------------------------------------------
    def classes(self):
        """Every top-level class of every module."""
        for mod in self.modules.values():
            yield from mod.classes.values()

    def estimators(self) -> dict[str, ClassInfo]:
        """Public estimator classes by name (abstract ones included).

        Raises
        ------
        ImportError
            When two modules define a public estimator of the same name.
        """
        out: dict[str, ClassInfo] = {}
        for info in self.classes():
            if not (info.public and info.is_estimator):
                continue
            if info.name in out:
                raise ImportError(
                    f"{self.package}: estimator {info.name!r} is defined in both "
                    f"{out[info.name].module} and {info.module}"
                )
            out[info.name] = info
        return out

    def is_abstract(self, info: ClassInfo) -> bool:
        """Whether an ``@abstractmethod`` along its MRO is not overridden (and the
        class has ``ABCMeta`` as metaclass: without it Python ignores the decorator)."""
        if not any(key == ("", "ABC") or getattr(self._class(key), "abc_meta", False)
                   for key in info.mro):
            return False
        pending: set[str] = set()
        for key in info.mro:
            c = self._class(key)
            if c is not None:
                pending |= c.abstract
        for name in pending:
            for key in info.mro:
                c = self._class(key)
                if c is None:
                    continue
                if name in c.abstract:
                    return True
                if name in c.concrete:
                    break
        return False

    # -- resolution ---------------------------------------------------------
    def _class(self, key: tuple[str, str]) -> ClassInfo | None:
        mod = self.modules.get(key[0])
        return mod.classes.get(key[1]) if mod is not None else None

    def _lookup(self, module: str, name: str, depth: int = 0) -> tuple[str, str]:
        """Where ``name``, as seen from ``module``, is defined."""
        mod = self.modules.get(module)
        if mod is None or depth > 20:
            return ("", name)
        if name in mod.classes:
            return (module, name)
        if name in mod.aliases:
            src, orig = mod.aliases[name]
            if src in self.modules:
                return self._lookup(src, orig, depth + 1)
            return ("", orig)
        return ("", name)

    def _module_of(self, mod: ModuleInfo, qualifier: str) -> str:
        """The module that ``qualifier`` (``_base`` in ``_base.Base``) names in ``mod``."""
        head, _, rest = qualifier.partition(".")
        if head in mod.aliases:
            src, orig = mod.aliases[head]
            target = f"{src}.{orig}"
        elif head in mod.module_aliases:
            target = mod.module_aliases[head]
        else:
            target = head
        return f"{target}.{rest}" if rest else target

    def _resolve(self) -> None:
        for mod in self.modules.values():
            for name, info in list(mod.classes.items()):
                bases = tuple(self._lookup(mod.name, b) if not q
                              else self._lookup(self._module_of(mod, q), b)
                              for q, b in info.bases)
                mod.classes[name] = ClassInfo(mod.name, name, bases, info.concrete,
                                              info.abstract, abc_meta=info.abc_meta)
        memo: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        for mod in self.modules.values():
            for name, info in list(mod.classes.items()):
                mod.classes[name] = ClassInfo(
                    info.module, info.name, info.bases, info.concrete, info.abstract,
                    self._mro(info.key, memo, ()), info.abc_meta,
                )
        # a module is deep when it (or a module of the package it imports) imports torch
        deep = {n for n, m in self.modules.items()
                if any(i.split(".")[0] in DEEP_PACKAGES for i in m.imports)}
        changed = True
        while changed:
            changed = False
            for n, m in self.modules.items():
                if n not in deep and any(i in deep for i in m.imports):
                    deep.add(n)
                    changed = True
        for n in deep:
            self.modules[n].needs_torch = True

    def _mro(self, key, memo, stack) -> tuple[tuple[str, str], ...]:
        if key in memo:
            return memo[key]
        info = self._class(key)
        if info is None or key in stack:
            return (key,)
        seqs = [list(self._mro(b, memo, (*stack, key))) for b in info.bases]
        seqs.append(list(info.bases))
        out = [key]
        while True:
            seqs = [s for s in seqs if s]
            if not seqs:
                break
            for s in seqs:
                head = s[0]
                if not any(head in t[1:] for t in seqs):
                    break
            else:  # inconsistent: Python would refuse the class; keep depth-first
                head = seqs[0][0]
            out.append(head)
            seqs = [t[1:] if t[0] == head else t for t in seqs]
        memo[key] = tuple(out)
        return memo[key]


def _walk(package: str, path: tuple[str, ...]):
    """(module name, file) of every module under ``path``, without importing."""
    for p in path:
        if Path(p).is_file():  # a single-module "package"
            yield package, p
            return
    init = next((Path(p) / "__init__.py" for p in path
                 if (Path(p) / "__init__.py").is_file()), None)
    if init is not None:
        yield package, str(init)
    for info in pkgutil.iter_modules(list(path), prefix=package + "."):
        finder = info.module_finder
        spec = finder.find_spec(info.name, None) if hasattr(finder, "find_spec") else None
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        if info.ispkg:
            yield from _walk(info.name, tuple(spec.submodule_search_locations or ()))
        else:
            yield info.name, spec.origin


def _qualified(node: ast.expr) -> tuple[str, str] | None:
    """(qualifier, name) of a base class expression: ``("", "Base")`` for
    ``Base``, ``("_base", "Base")`` for ``_base.Base``."""
    if isinstance(node, ast.Subscript | ast.Call):
        return _qualified(node.value if isinstance(node, ast.Subscript) else node.func)
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    parts.reverse()
    return ".".join(parts[:-1]), parts[-1]


def _name_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _name_of(node.value)
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    return None


def _is_abstract(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(_name_of(d) == "abstractmethod" for d in fn.decorator_list)


def _top_level(body):
    """Top-level statements, looking into ``if``/``try``/``with`` blocks."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level(block)
            for h in node.handlers:
                yield from _top_level(h.body)
        elif isinstance(node, ast.With):
            yield from _top_level(node.body)


def _read_module(name: str, file: str) -> ModuleInfo:
    tree = ast.parse(Path(file).read_text(encoding="utf-8"), filename=file)
    is_pkg = Path(file).name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    imports: set[str] = set()
    aliases: dict[str, tuple[str, str]] = {}
    module_aliases: dict[str, str] = {}
    classes: dict[str, ClassInfo] = {}
    for node in _top_level(tree.body):
        if isinstance(node, ast.Import):
            for a in node.names:
                imports.add(a.name)
                if a.asname:
                    module_aliases[a.asname] = a.name
                else:
                    head = a.name.split(".")[0]
                    module_aliases[head] = head
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                try:
                    base = importlib.util.resolve_name("." * node.level + base, package)
                except ImportError:
                    continue
            imports.add(base)
            for a in node.names:
                imports.add(f"{base}.{a.name}")  # `from pkg import submodule`
                aliases[a.asname or a.name] = (base, a.name)
        elif isinstance(node, ast.ClassDef):
            bases = tuple(q for q in map(_qualified, node.bases) if q)
            fns = [f for f in node.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
            abstract = frozenset(f.name for f in fns if _is_abstract(f))
            # class attributes count as overrides too (``_build_module = staticmethod(...)``)
            attrs = {t.id for a in node.body if isinstance(a, ast.Assign)
                     for t in a.targets if isinstance(t, ast.Name)}
            concrete = frozenset({f.name for f in fns if not _is_abstract(f)} | attrs)
            abc_meta = any(k.arg == "metaclass" and _name_of(k.value) == "ABCMeta"
                           for k in node.keywords)
            classes[node.name] = ClassInfo(name, node.name, bases, concrete, abstract,
                                           abc_meta=abc_meta)
    return ModuleInfo(name, file, frozenset(imports), aliases, module_aliases, classes)


def modules_defining(package: str, path: tuple[str, ...], name: str) -> list[str]:
    """Modules of ``package`` whose source defines a top-level class ``name``.

    A text search (``^class NAME``), much cheaper than :class:`SourceIndex`:
    what a lazy attribute access needs.
    """
    pattern = re.compile(rf"^class\s+{re.escape(name)}\b", re.MULTILINE)
    return [mod for mod, file in _walk(package, path)
            if pattern.search(Path(file).read_text(encoding="utf-8"))]


@lru_cache(maxsize=32)
def source_index(package: str, path: tuple[str, ...]) -> SourceIndex:
    """The (cached) :class:`SourceIndex` of ``package`` at ``path``."""
    return SourceIndex(package, path)


def package_path(package: str) -> tuple[str, ...]:
    """The search path of an importable package (its one file for a module),
    found without importing it (only its parent packages are imported).

    Raises
    ------
    ValueError
        When ``package`` cannot be found.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"cannot find estimator package {package!r}: {exc}") from None
    if spec is None:
        raise ValueError(f"cannot find estimator package {package!r}: no module of that name")
    if spec.submodule_search_locations is not None:
        return tuple(spec.submodule_search_locations)
    if spec.origin and spec.origin.endswith(".py"):
        return (spec.origin,)
    raise ValueError(f"estimator package {package!r} has no Python source")
