"""``package.module:attribute`` references to user code, resolved in one place.

The registry's ``pyfunc`` flavor names the factory that loads an artifact this way, and a
model's retraining names its training function; both get the same checks and errors.
"""

from __future__ import annotations

import importlib
from typing import Any

from watchkeeper.errors import ConfigError

__all__ = ["load_entry_point"]


def load_entry_point(reference: object, *, key: str, what: str = "a callable") -> Any:
    """The object ``reference`` (``package.module:attribute``) names; ConfigError naming
    ``key`` when it is malformed, cannot be imported or is not callable."""
    if (
        not isinstance(reference, str)
        or reference.count(":") != 1
        or not all(part.strip() for part in reference.split(":"))
    ):
        raise ConfigError(
            f"{key}: expected 'package.module:{what.split()[-1]}', got {reference!r}", key=key
        )
    module_name, attribute = reference.split(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{key}: cannot import {reference!r}: {exc}", key=key) from None
    if not callable(found):
        raise ConfigError(f"{key}: {reference!r} is not {what}", key=key)
    return found
