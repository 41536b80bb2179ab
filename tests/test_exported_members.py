"""Every package exports exactly its public names, each documented (httpx's
``test_exported_members``): nothing private leaks into ``from watchkeeper.x import *`` or an
editor's completion, and a name in ``__all__`` is one the docs describe."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "watchkeeper",
    "watchkeeper.alerts",
    "watchkeeper.detectors",
    "watchkeeper.ingest",
    "watchkeeper.monitor",
    "watchkeeper.profiles",
    "watchkeeper.registry",
    "watchkeeper.report",
    "watchkeeper.sdk",
    "watchkeeper.server",
    "watchkeeper.store",
]
DOCS = "\n".join(
    path.read_text(encoding="utf-8") for path in [ROOT / "README.md", *ROOT.glob("docs/*.md")]
)
# Dunder names a package may export on purpose.
EXPORTED_DUNDERS = {"__version__"}


def _documented(name: str, package: ModuleType) -> bool:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return bool(pattern.search(DOCS) or pattern.search(package.__doc__ or ""))


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_exists_is_public_and_documented(name: str) -> None:
    package = importlib.import_module(name)
    exported = list(package.__all__)
    assert len(exported) == len(set(exported)), "a name is listed twice"
    for member in exported:
        assert not member.startswith("_") or member in EXPORTED_DUNDERS, member
        value = getattr(package, member)  # exists (lazy names load here)
        if member in EXPORTED_DUNDERS:
            continue
        assert _documented(member, package), f"{name}.{member} is in no docs page"
        if inspect.isclass(value) or inspect.isfunction(value):
            summary = (inspect.getdoc(value) or "").strip().splitlines()
            assert summary, f"{name}.{member} has no docstring"


@pytest.mark.parametrize("name", PACKAGES)
def test_nothing_public_is_left_out_of_all(name: str) -> None:
    package = importlib.import_module(name)
    public = {
        member
        for member, value in vars(package).items()
        if not member.startswith("_")
        and not isinstance(value, ModuleType)
        and member != "annotations"  # from __future__ import annotations
    }
    assert public <= set(package.__all__), sorted(public - set(package.__all__))
