"""Public estimators document exactly their constructor parameters."""

from __future__ import annotations

import inspect
import re

import pytest

from simsbench.utils.discovery import all_estimators


def _documented_params(doc: str) -> list[str]:
    section = re.search(r"Parameters\n\s*-+\n(.*?)(\n\s*(Attributes|Returns|See Also|Notes|"
                        r"References|Examples)\n\s*-+\n|\Z)", doc, re.S)
    assert section, "no Parameters section"
    names = []
    for line in section.group(1).splitlines():
        m = re.match(r"^    (\w+(?:, \w+)*) :", line)
        if m:
            names.extend(n.strip() for n in m.group(1).split(","))
    return names


@pytest.mark.parametrize("name, cls", all_estimators())
def test_parameters_documented(name, cls):
    doc = inspect.getdoc(cls) or ""
    doc = "    " + doc.replace("\n", "\n    ")  # getdoc dedents; restore the indent
    documented = _documented_params(doc)
    signature = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    missing = sorted(set(signature) - set(documented))
    extra = sorted(set(documented) - set(signature))
    assert not missing, f"{name}: undocumented parameters {missing}"
    assert not extra, f"{name}: documented but not in __init__: {extra}"


@pytest.mark.parametrize("name, cls", all_estimators())
def test_has_references_or_notes(name, cls):
    doc = inspect.getdoc(cls) or ""
    if name != "PooledSVR":
        assert "References" in doc, f"{name} must cite its paper"
    assert "Examples" in doc, f"{name} needs an Examples section"
