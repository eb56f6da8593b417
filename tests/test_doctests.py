"""Every docstring example in simsbench runs and prints what it shows.

One test per module that has examples (found in the sources, so a new module's
examples are picked up without a list).  Modules that need torch skip without
it; torch runs on one thread here (the examples fit tiny models, for which more
threads only add contention).
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
from pathlib import Path

import pytest

import simsbench
from simsbench.utils._index import source_index

ROOT = Path(simsbench.__file__).resolve().parent
INDEX = source_index("simsbench", (str(ROOT),))
MODULES = sorted(name for name, info in INDEX.modules.items()
                 if ">>>" in Path(info.path).read_text(encoding="utf-8"))


@contextlib.contextmanager
def _one_torch_thread(needs_torch: bool):
    if not needs_torch:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def test_examples_are_found():
    assert "simsbench.metrics" in MODULES and "simsbench.estimators._tfn" in MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_doctests(module_name):
    needs_torch = INDEX.modules[module_name].needs_torch
    if needs_torch:
        pytest.importorskip("torch")
        pytest.importorskip("skorch")
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder().find(module, module_name)
    tests = [t for t in tests if t.examples]
    assert tests, f"{module_name} has '>>>' but no doctest was found"
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    with _one_torch_thread(needs_torch):
        for test in tests:
            runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, report.getvalue()
