"""The estimators package's layering: shared code lives in shared modules.

A model's file (the module that defines a public estimator) may import the
training shell, the shared helpers and ``modules/``, but not another model's
file: what two models share is moved to a shared module instead.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

pytest.importorskip("torch")

import simsbench.estimators as estimators  # noqa: E402

PACKAGE = "simsbench.estimators"


def _model_modules() -> set[str]:
    """Modules (``simsbench.estimators._x``) that define a public estimator.

    A public class that other public classes derive from (``DeepRegressor``)
    is a base, not a model.
    """
    classes = [getattr(estimators, name) for name in estimators.__all__]
    models = [c for c in classes if not any(c is not o and issubclass(o, c) for o in classes)]
    return {c.__module__ for c in models}


def _imported_modules(module: str) -> set[str]:
    path = Path(importlib.import_module(module).__file__)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


def test_the_model_modules_are_found():
    models = _model_modules()
    assert f"{PACKAGE}._lf_dnn" in models and f"{PACKAGE}._tfn" in models
    assert f"{PACKAGE}._deep" not in models


@pytest.mark.parametrize("module", sorted(_model_modules()))
def test_no_model_file_imports_another_models_file(module):
    others = _model_modules() - {module}
    imported = {m for m in _imported_modules(module) if m in others}
    assert not imported, f"{module} imports the model file(s) {sorted(imported)}"
