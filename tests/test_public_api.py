from __future__ import annotations

import subprocess
import sys

import watchkeeper


def test_all_names_resolve() -> None:
    for name in watchkeeper.__all__:
        assert getattr(watchkeeper, name) is not None, name


def test_all_is_sorted_and_unique() -> None:
    assert list(watchkeeper.__all__) == sorted(set(watchkeeper.__all__))


def test_import_is_lazy() -> None:
    code = (
        "import sys, watchkeeper; "
        "heavy = [m for m in ('pandas', 'scipy', 'sklearn', 'fastapi', 'sqlalchemy') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == ""


def test_errors_subclass_builtins() -> None:
    assert issubclass(watchkeeper.InputError, ValueError)
    assert issubclass(watchkeeper.NotFoundError, LookupError)
    assert issubclass(watchkeeper.AuthError, PermissionError)
    assert issubclass(watchkeeper.SchemaError, watchkeeper.WatchkeeperError)
