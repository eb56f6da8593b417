"""Estimator discovery walks the packages (no list of models), capabilities
are estimator tags (no class-name checks), and a model added as one module
(plus one TOML spec) shows up in ``simsbench list`` and in the common checks."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils import Tags as SklearnTags
from sklearn.utils import get_tags

import simsbench
import simsbench.estimators as est
from simsbench.cli import main
from simsbench.utils import discovery
from simsbench.utils.discovery import all_estimators, estimator_names, get_estimator_class
from simsbench.utils.estimator_checks import check_estimator
from simsbench.utils.tags import SimsbenchTags, get_simsbench_tags

ROOT = Path(simsbench.__file__).resolve().parent

TINY_MODEL = '''
"""A test model: ridge regression on the time-pooled features."""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted

from simsbench.estimators import ModalityPooler


class {name}(RegressorMixin, BaseEstimator):
    """Ridge on mean-pooled features."""

    def __init__(self, modalities=("text", "audio", "vision"), alpha=1.0):
        self.modalities = modalities
        self.alpha = alpha

    def fit(self, X, y):
        y = np.asarray(y, dtype=float)
        y = y[:, 0] if y.ndim == 2 else y
        self.pooler_ = ModalityPooler(self.modalities).fit(X)
        self.ridge_ = Ridge(alpha=self.alpha).fit(self.pooler_.transform(X), y)
        return self

    def predict(self, X):
        check_is_fitted(self, "ridge_")
        return self.ridge_.predict(self.pooler_.transform(X)).astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.dict = True
        tags.input_tags.two_d_array = False
        return tags
'''


def _spec_root(tmp_path: Path, class_name: str) -> Path:
    root = tmp_path / "specs"
    (root / "estimators").mkdir(parents=True)
    (root / "estimators" / "tiny_ridge.toml").write_text(
        f'name = "Tiny ridge"\nclass = "{class_name}"\n',
        encoding="utf-8",
    )
    return root


def _forget(prefix: str, *names: str) -> None:
    for mod in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[mod]
    for name in names:
        est.__dict__.pop(name, None)


@pytest.fixture
def model_in_package(tmp_path, monkeypatch):
    """A model module added to simsbench.estimators (a second directory on the
    package's ``__path__``, as a new file in the package would be)."""
    extra = tmp_path / "added"
    extra.mkdir()
    (extra / "_tiny_ridge.py").write_text(TINY_MODEL.format(name="TinyRidge"), encoding="utf-8")
    monkeypatch.setattr(est, "__path__", [*est.__path__, str(extra)])
    yield "TinyRidge"
    _forget("simsbench.estimators._tiny_ridge", "TinyRidge")


@pytest.fixture
def model_in_other_package(tmp_path, monkeypatch):
    """A model in a user's package, named by $SIMSBENCH_ESTIMATORS."""
    pkg = tmp_path / "site" / "mymodels"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""My models."""\n', encoding="utf-8")
    (pkg / "ridge.py").write_text(TINY_MODEL.format(name="MyRidge"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv(discovery.ENV_VAR, "mymodels")
    yield "MyRidge"
    _forget("mymodels")


def _common_case_ids() -> set[str]:
    """The ids tests/test_common.py parametrises its checks with (collected afresh)."""
    spec = importlib.util.spec_from_file_location(
        "_test_common_probe", Path(__file__).with_name("test_common.py"))
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    return {case.id for case in probe._cases()}


def _list(capsys, *args):
    rc = main(["list", "estimators", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


# -- no list of models ---------------------------------------------------------

def test_estimators_package_has_no_model_list():
    """The package's __init__ names no model module nor class."""
    source = (ROOT / "estimators" / "__init__.py").read_text(encoding="utf-8")
    strings = {n.value for n in ast.walk(ast.parse(source))
               if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    modules = {p.stem for p in (ROOT / "estimators").glob("_*.py")} - {"__init__"}
    assert not strings & (modules | set(estimator_names(None))), strings & modules


def test_import_is_lazy_and_classical_models_need_no_torch():
    code = textwrap.dedent("""
        import sys
        import simsbench.estimators as est
        names = est.__all__
        assert "TFN" in names and "PooledSVR" in names, names
        from simsbench.estimators import PooledSVR
        from simsbench.utils.discovery import all_estimators, estimator_names
        assert [n for n, _ in all_estimators(include_deep=False)] == ["PooledSVR"]
        assert "TFN" in estimator_names()
        bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "skorch")
               or m.startswith("simsbench.estimators._tfn")]
        assert not bad, bad[-3:]
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT.parent)


def test_source_listing_agrees_with_imported_classes():
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    assert estimator_names() == [n for n, _ in all_estimators()]
    assert estimator_names("transformer") == [n for n, _ in all_estimators("transformer")]
    # __all__: every public estimator class, abstract bases and transformers included
    everything = {n for n, _ in all_estimators(None)}
    for name in est.__all__:
        cls = getattr(est, name)
        assert issubclass(cls, BaseEstimator)
        assert (name in everything) != inspect.isabstract(cls), name


def test_abstract_bases_are_skipped_by_their_declared_marker():
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from simsbench.estimators import DeepRegressor, MultiTaskRegressor

    for base in (DeepRegressor, MultiTaskRegressor):
        assert inspect.isabstract(base)
        with pytest.raises(TypeError, match="abstract"):
            base()
    names = estimator_names()
    assert "DeepRegressor" not in names and "MultiTaskRegressor" not in names
    assert "ModalityPooler" not in names  # a transformer
    assert "ModalityPooler" in estimator_names("transformer")


def test_source_index_reads_bases_abstract_methods_and_torch_imports(tmp_path, monkeypatch):
    """The source index follows imports (relative ones too), the MRO (a mixin's
    method overrides an abstract one) and torch imports through other modules."""
    from simsbench.utils._index import SourceIndex

    pkg = tmp_path / "idxpkg"
    pkg.mkdir()
    files = {
        "__init__.py": "",
        "_base.py": "from abc import ABCMeta, abstractmethod\n"
                    "from sklearn.base import BaseEstimator, RegressorMixin\n"
                    "class Base(RegressorMixin, BaseEstimator, metaclass=ABCMeta):\n"
                    "    @abstractmethod\n    def _build(self): ...\n"
                    "class NoMeta(RegressorMixin, BaseEstimator):  # the decorator is inert\n"
                    "    @abstractmethod\n    def _build(self): ...\n",
        "_deep.py": "import torch\nfrom ._base import Base\n"
                    "class Deep(Base):\n    def _build(self): return 1\n",
        "_child.py": "from idxpkg._deep import Deep\nclass Child(Deep):\n    pass\n",
        "_mixed.py": "from idxpkg import _base\n"
                     "class _Mix:\n    def _build(self): return 2\n"
                     "class Mixed(_Mix, _base.Base):\n    pass\n"
                     "class StillAbstract(_base.Base, _Mix):\n    pass\n"
                     "class Helper:\n    pass\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text, encoding="utf-8")
    index = SourceIndex("idxpkg", (str(pkg),))
    found = index.estimators()
    assert sorted(found) == ["Base", "Child", "Deep", "Mixed", "NoMeta", "StillAbstract"]
    assert {n for n, i in found.items() if index.is_abstract(i)} == {"Base", "StillAbstract"}
    assert all(found[n].is_regressor for n in found)
    assert {n for n, m in index.modules.items() if m.needs_torch} == {
        "idxpkg._deep", "idxpkg._child"}
    pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:  # Python agrees on what is abstract
        for name, info in found.items():
            cls = getattr(importlib.import_module(info.module), name)
            assert inspect.isabstract(cls) == index.is_abstract(info), name
    finally:
        _forget("idxpkg")


def test_unknown_attribute_and_type_filter_errors():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        est.Nope  # noqa: B018
    with pytest.raises(ValueError, match="type_filter"):
        estimator_names("classifier")
    with pytest.raises(ValueError, match="unknown estimator 'Nope'; known: .*PooledSVR"):
        get_estimator_class("Nope")


# -- adding a model: one module + one TOML ------------------------------------

def test_model_module_added_to_the_package_is_discovered(model_in_package, tmp_path, capsys):
    name = model_in_package
    assert name in est.__all__
    cls = getattr(est, name)
    assert cls.__module__ == "simsbench.estimators._tiny_ridge"
    assert name in dict(all_estimators(include_deep=False))
    assert name in estimator_names(include_deep=False)
    check_estimator(cls())  # what tests/test_common.py runs on every discovered model
    assert f"{name}-check_pickle_roundtrip" in _common_case_ids()
    out = _list(capsys, "--specs", str(_spec_root(tmp_path, name)))
    assert any(line.split() == ["tiny_ridge", "Tiny", "ridge", "class", name]
               for line in out.splitlines()), out
    assert name in out.split("Estimator classes:")[1]


def test_model_package_named_by_environment_is_discovered(model_in_other_package, tmp_path,
                                                          capsys):
    from simsbench.specs import load_specs

    name = model_in_other_package
    root = _spec_root(tmp_path, name)
    out = _list(capsys, "--specs", str(root))
    assert f"class {name}" in out and name in out.split("Estimator classes:")[1]
    assert get_estimator_class(name).__module__ == "mymodels.ridge"
    assert name in dict(all_estimators(include_deep=False))
    model = load_specs([root]).estimator("tiny_ridge").build()
    check_estimator(model)
    assert {f"{name}-check_fit_returns_self", f"{name}-check_modality_subsets"} <= \
        _common_case_ids()


def test_model_package_named_by_entry_point_is_discovered(tmp_path, monkeypatch, capsys):
    """An installed distribution declares its package in the ``simsbench.estimators``
    entry-point group (faked here: installing one needs a build)."""
    from importlib.metadata import EntryPoint

    pkg = tmp_path / "site" / "epmodels"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(TINY_MODEL.format(name="EpRidge"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delenv(discovery.ENV_VAR, raising=False)
    eps = [EntryPoint("epmodels", "epmodels", discovery.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(discovery.metadata, "entry_points",
                        lambda group: eps if group == discovery.ENTRY_POINT_GROUP else [])
    try:
        assert discovery.estimator_packages() == ["simsbench.estimators", "epmodels"]
        assert "EpRidge" in _list(capsys).split("Estimator classes:")[1]
        assert get_estimator_class("EpRidge").__module__ == "epmodels"
    finally:
        _forget("epmodels")


def test_unknown_estimator_package_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv(discovery.ENV_VAR, "no_such_models_pkg")
    assert main(["list", "estimators"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "SIMSBENCH_ESTIMATORS" in err and "no_such_models_pkg" in err


# -- capabilities are tags -----------------------------------------------------

def test_tags_are_sklearn_tags_with_simsbench_capabilities():
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from sklearn.utils.estimator_checks import check_valid_tag_types

    expected = {  # name: (multi_task, semi_supervised, needs_bert)
        "AVMC": (True, False, False), "AVMCSemi": (True, True, False),
        "MLFDNN": (True, False, False), "MTFN": (True, False, False),
        "MLMF": (True, False, False), "BertMAG": (False, False, True),
        "TFN": (False, False, False), "MISA": (False, False, False),
        "PooledSVR": (False, False, False),
    }
    for name, cls in all_estimators():
        e = cls()
        tags = get_tags(e)
        assert isinstance(tags, SklearnTags)
        check_valid_tag_types(name, e)
        t = get_simsbench_tags(e)
        assert isinstance(t, SimsbenchTags)
        if name in expected:
            assert (t.multi_task, t.semi_supervised, t.needs_bert) == expected[name], name
        assert t.multi_task == tags.target_tags.multi_output
    from simsbench.estimators import MISA, TFN

    assert get_simsbench_tags(MISA(text_encoder="bert")).needs_bert
    assert get_simsbench_tags(TFN(modalities=("vision", "text"))).modalities == ("text", "vision")


def test_protocols_read_tags_not_class_names():
    """An estimator that merely carries the name of the semi-supervised model is not
    treated as semi-supervised (the protocols used to recognise it by name)."""
    from simsbench.protocols._base import is_multitask, uses_unlabelled

    AVMCSemi = type("AVMCSemi", (BaseEstimator,), {})  # noqa: N806
    assert not uses_unlabelled(AVMCSemi())
    assert not is_multitask(AVMCSemi())


def _compared_strings(node: ast.Compare):
    for side in (node.left, *node.comparators):
        elts = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
        for e in elts:
            if isinstance(e, ast.Constant) and isinstance(e.value, str):
                yield e.value


def test_no_estimator_name_checks_left():
    """The protocols, utilities, CLI, runner and the rest of the library outside the
    estimators never compare with a model's class name (``type(e).__name__ ==``,
    ``name in ("AVMCSemi", ...)``): capabilities are read from tags."""
    names = set(estimator_names(None)) | {"DeepRegressor", "MultiTaskRegressor"}
    files = [*(ROOT / "protocols").glob("*.py"), *(ROOT / "utils").glob("*.py"),
             *ROOT.glob("*.py")]
    assert ROOT / "cli.py" in files and ROOT / "runner.py" in files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            by_name = any(isinstance(n, ast.Attribute) and n.attr == "__name__"
                          for n in ast.walk(node))
            for value in _compared_strings(node):
                assert value not in names and not (by_name and value != "__main__"), (
                    f"{path.name}:{node.lineno}: compares with {value!r}")
