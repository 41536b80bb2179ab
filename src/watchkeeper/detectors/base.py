"""The detector contract, the serialisable detector spec and parameter validation.

Every detector is a small stateful object with one shape, modelled on River's
``river/base/drift_detector.py`` (state in private attributes restored by ``_reset()``), but
with a contract that never changes:

* ``update(x) -> None`` feeds one finite value (``0``/``1`` for binary detectors);
* ``drift_detected`` / ``warning_detected`` are read-only and refer to the latest update;
* ``reset()`` restores the state of a freshly built detector; ``n_seen`` counts updates;
* ``spec`` returns the :class:`DetectorSpec` that rebuilds an identical fresh detector.

>>> from watchkeeper.detectors import DetectorSpec
>>> detector = DetectorSpec(kind="static_threshold", params={"bound": 1.0}).build()
>>> for value in (0.5, 2.0, 0.1):
...     detector.update(value)
...     print(detector.drift_detected)
False
True
False
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias

from watchkeeper.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_TARGET_ARL",
    "Detector",
    "DetectorSpec",
    "ParamValue",
]

ParamValue: TypeAlias = bool | int | float | str | None
"""A JSON-safe scalar: the only kind of value a detector parameter may take."""

DEFAULT_TARGET_ARL = 10_000.0
"""Mean number of in-control updates between false alarms that calibrated detectors aim for."""


class Detector(abc.ABC):
    """A streaming change detector: feed values one at a time, read the flags after each update.

    Subclasses declare ``kind`` (their registry name) and ``binary_input`` (whether ``update``
    takes 0/1 indicators such as "the prediction was wrong"), pass their validated parameters to
    ``Detector.__init__`` and implement ``_update`` and ``_reset``.
    """

    kind: ClassVar[str]
    binary_input: ClassVar[bool] = False

    def __init__(self, **params: ParamValue) -> None:
        self._params = params
        self._n_seen = 0
        self._drift_detected = False
        self._warning_detected = False

    def update(self, x: float) -> None:
        """Feed one value; ``drift_detected`` / ``warning_detected`` then describe this update."""
        if not math.isfinite(x):
            raise InputError(
                f"{type(self).__name__}.update got {x!r}; detectors take finite numbers, "
                "so drop or impute missing values before feeding them"
            )
        if self.binary_input and x != 0 and x != 1:
            raise InputError(
                f"{type(self).__name__}.update got {x!r}; this detector watches a binary "
                "stream (1 = error/failure, 0 = correct), so feed 0 or 1"
            )
        self._n_seen += 1
        self._update(x)

    @abc.abstractmethod
    def _update(self, x: float) -> None:
        """Advance the state by one validated value and set both flags."""

    def reset(self) -> None:
        """Forget everything seen: the detector behaves exactly like a freshly built one."""
        self._n_seen = 0
        self._drift_detected = False
        self._warning_detected = False
        self._reset()

    @abc.abstractmethod
    def _reset(self) -> None:
        """Restore the private state of a fresh detector (the flags and count are done)."""

    @property
    def drift_detected(self) -> bool:
        """Whether the latest update signalled a change."""
        return self._drift_detected

    @property
    def warning_detected(self) -> bool:
        """Whether the latest update left the detector in its warning zone."""
        return self._warning_detected

    @property
    def n_seen(self) -> int:
        """Number of updates since the detector was built or reset."""
        return self._n_seen

    @property
    def spec(self) -> DetectorSpec:
        """The spec that builds a fresh detector with the same parameters."""
        return DetectorSpec(kind=self.kind, params=self._params)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self._params.items())
        return f"{type(self).__name__}({arguments})"


def _check_param_value(kind: str, name: object, value: object) -> None:
    if not isinstance(name, str):
        raise ConfigError(
            f"detector {kind!r} has a parameter name {name!r} that is not a string",
            key="params",
        )
    if value is not None and not isinstance(value, bool | int | float | str):
        raise ConfigError(
            f"parameter {name!r} of detector {kind!r} is {type(value).__name__} {value!r}; "
            "parameters must be JSON scalars (number, string, boolean or null)",
            key=name,
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"parameter {name!r} of detector {kind!r} is {value!r}; give a finite number",
            key=name,
        )


@dataclass(frozen=True)
class DetectorSpec:
    """A serialisable, hashable description of a detector; ``build()`` returns the live object.

    ``params`` holds JSON scalars only and is stored read-only, so a spec can be a dict key,
    stored as JSON and sent over the API unchanged.
    """

    kind: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise ConfigError(
                f"detector kind must be a non-empty string, got {self.kind!r}", key="kind"
            )
        if not isinstance(self.params, Mapping):
            raise ConfigError(
                f"params of detector {self.kind!r} must be a mapping of name to value, "
                f"got {type(self.params).__name__}",
                key="params",
            )
        for name, value in self.params.items():
            _check_param_value(self.kind, name, value)
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __hash__(self) -> int:
        return hash((self.kind, tuple(sorted(self.params.items()))))

    def __reduce__(self) -> tuple[type[DetectorSpec], tuple[str, dict[str, ParamValue]]]:
        # MappingProxyType cannot be pickled; rebuild from a plain dict instead.
        return (DetectorSpec, (self.kind, dict(self.params)))

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"kind": ..., "params": {...}}``, ready for ``json.dumps``."""
        return {"kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DetectorSpec:
        """Rebuild a spec from the output of :meth:`to_dict` (e.g. after a JSON round trip)."""
        if not isinstance(data, Mapping) or set(data) - {"kind", "params"} or "kind" not in data:
            raise ConfigError(
                "a detector spec is a mapping with keys 'kind' and optional 'params', "
                f"got {data!r}",
                key="kind",
            )
        return cls(kind=data["kind"], params=data.get("params", {}))

    def build(self) -> Detector:
        """Return a fresh detector of this kind; raise ConfigError for unknown kinds or params."""
        # Imported here because the registry imports every detector module, which import this one.
        from watchkeeper.detectors.registry import build_detector

        return build_detector(self.kind, self.params)


def check_int(name: str, value: object, *, minimum: int) -> int:
    """Return ``value`` if it is an integer ≥ ``minimum``; else raise ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}, got {value!r}", key=name)
    return value


def check_float(
    name: str,
    value: object,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> float:
    """Return ``value`` if it is a finite real number inside the given bounds; else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}", key=name)
    violated = (
        (above is not None and not value > above and f"> {above}")
        or (at_least is not None and not value >= at_least and f"≥ {at_least}")
        or (below is not None and not value < below and f"< {below}")
        or (at_most is not None and not value <= at_most and f"≤ {at_most}")
    )
    if violated:
        raise ConfigError(f"{name} must be {violated}, got {value!r}", key=name)
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``; else raise ConfigError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}", key=name)
    return value


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool; else raise ConfigError naming it."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}", key=name)
    return value
