"""``MonitorStore`` lists exactly what the monitor calls, and ``Store`` has all of it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import watchkeeper.monitor
from watchkeeper.store import MonitorStore, Store

MONITOR_DIR = Path(watchkeeper.monitor.__file__).parent
# ``self._store.x``, ``shared.store.x`` / ``self.store.x`` (the monitor's state) or a
# ``store`` parameter's ``store.x``, not a module path such as ``watchkeeper.store.records``.
STORE_USE = re.compile(r"(?:\b_store|\b(?:_?shared|self)\.store|(?<![.\w])store)\.(\w+)")


def _protocol_members() -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(MonitorStore)
        if not name.startswith("_") and name in MonitorStore.__dict__
    }


def test_the_protocol_lists_exactly_the_store_members_the_monitor_uses() -> None:
    used = {
        match
        for path in MONITOR_DIR.rglob("*.py")
        for match in STORE_USE.findall(path.read_text(encoding="utf-8"))
    }
    assert used == _protocol_members()


def test_the_store_implements_the_protocol_with_the_same_signatures() -> None:
    for name in _protocol_members():
        member = getattr(Store, name)
        wanted = getattr(MonitorStore, name)
        if isinstance(wanted, property):
            assert isinstance(member, property), name
            continue
        assert list(inspect.signature(member).parameters) == list(
            inspect.signature(wanted).parameters
        ), name
