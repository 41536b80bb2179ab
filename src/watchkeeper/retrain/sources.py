"""Base data for retraining: rows a run learns from besides the model's own labelled events.

The retrain config's ``base:`` names one source (docs/retraining.md):

.. code-block:: yaml

    base: {file: history/rainfall.parquet, label: rain}     # CSV or Parquet, by suffix or format:
    base: {callable: "mypkg.data:history"}                   # function(request) -> DataFrame
    base:
      feast:                                                 # a Feast feature view, offline store
        repo: feature_repo                                   # the folder of feature_store.yaml
        features: ["weather:humidity", "weather:pressure"]   # or feature_service: NAME
        entities: {file: labels.parquet, label: rain}        # keys, event_timestamp, the label

>>> source = parse_base({"file": "history.csv", "label": "rain"})
>>> source.to_dict()
{'file': 'history.csv', 'format': 'csv', 'label': 'rain'}

Every source returns the model's features, ``label`` and, when the source has event times, a
``timestamp`` column in epoch seconds; :func:`~watchkeeper.retrain.data.assemble` drops base rows
from the holdout's period, so base data never leaks into the rows the gate scores. A Feast
source joins the features point-in-time onto its entity table (``get_historical_features``):
each row gets the feature values as they were at its ``event_timestamp``, never later ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import pandas as pd

from watchkeeper.entrypoints import load_entry_point
from watchkeeper.errors import ConfigError, InputError

__all__ = [
    "BaseRequest",
    "BaseSource",
    "CallableSource",
    "FeastSource",
    "FileSource",
    "parse_base",
]

LABEL: Final = "label"
TIMESTAMP: Final = "timestamp"
FORMATS: Final = ("csv", "parquet")
_SUFFIXES: Final = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: The entity table's time column, Feast's convention.
FEAST_TIMESTAMP: Final = "event_timestamp"


@dataclass(frozen=True, slots=True)
class BaseRequest:
    """What a run asks its base source for: the model, its features, the run's data range."""

    model: str
    features: tuple[str, ...]
    start: float
    end: float


class BaseSource(Protocol):
    """Where a run's base data comes from."""

    def load(self, request: BaseRequest) -> pd.DataFrame:
        """The rows: the request's features, ``label`` and optionally ``timestamp``."""

    def to_dict(self) -> dict[str, Any]:
        """The config mapping :func:`parse_base` reads back."""


@dataclass(frozen=True, slots=True)
class FileSource:
    """A CSV or Parquet file (a local path or an fsspec URL)."""

    path: str
    format: str
    label: str = LABEL
    timestamp: str | None = None

    def load(self, request: BaseRequest) -> pd.DataFrame:
        """The file's rows, ``label`` (and ``timestamp``) named as the run expects."""
        try:
            if self.format == "parquet":
                frame = pd.read_parquet(self.path)
            else:
                frame = pd.read_csv(self.path)
        except (OSError, ValueError) as error:
            raise InputError(
                f"retrain.base.file: cannot read {self.path!r} as {self.format}: {error}",
                column="file",
            ) from None
        return _normalised(frame, "file", self.label, self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        """The config mapping :func:`parse_base` reads back."""
        return _without_defaults(
            {"file": self.path, "format": self.format, "label": self.label},
            timestamp=self.timestamp,
        )


@dataclass(frozen=True, slots=True)
class CallableSource:
    """A function ``package.module:function`` called with the :class:`BaseRequest`."""

    reference: str
    label: str = LABEL
    timestamp: str | None = None

    def load(self, request: BaseRequest) -> pd.DataFrame:
        """What the function returns, ``label`` (and ``timestamp``) named as the run expects."""
        try:
            function = load_entry_point(self.reference, key="retrain.base.callable")
        except ConfigError as error:  # found only now, at run time: the run fails, saying why
            raise InputError(str(error), column="callable") from None
        try:
            frame = function(request)
        except Exception as error:  # the user's code: its failure is the run's, reported
            raise InputError(
                f"retrain.base.callable: {self.reference} failed: {type(error).__name__}: {error}",
                column="callable",
            ) from None
        if not isinstance(frame, pd.DataFrame):
            raise InputError(
                f"retrain.base.callable: {self.reference} returned {type(frame).__name__}, "
                "not a pandas DataFrame",
                column="callable",
            )
        return _normalised(frame, "callable", self.label, self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        """The config mapping :func:`parse_base` reads back."""
        return _without_defaults(
            {"callable": self.reference, "label": self.label}, timestamp=self.timestamp
        )


@dataclass(frozen=True, slots=True)
class FeastSource:
    """Features of a Feast repository joined point-in-time onto an entity table.

    ``entities`` (a file or a callable) holds the join keys, ``event_timestamp`` and the label
    (its ``label:`` names the column); ``features`` (``view:feature`` references) or
    ``feature_service`` name what Feast's offline store adds to each row. Needs the ``feast``
    extra.
    """

    repo: str
    entities: FileSource | CallableSource
    features: tuple[str, ...] = ()
    feature_service: str | None = None

    def load(self, request: BaseRequest) -> pd.DataFrame:
        """The entity rows with their features as of each row's ``event_timestamp``."""
        try:
            from feast import FeatureStore
        except ImportError:
            raise InputError(
                "retrain.base.feast: the feast package is not installed: "
                "pip install 'watchkeeper[feast]'",
                column="feast",
            ) from None
        entities = self.entities.load(request)
        if FEAST_TIMESTAMP not in entities.columns:
            raise InputError(
                f"retrain.base.feast.entities: the entity table needs an {FEAST_TIMESTAMP!r} "
                f"column (the time each row's features are read as of); it has "
                f"{', '.join(map(str, entities.columns))}",
                column=FEAST_TIMESTAMP,
            )
        entities = entities.assign(
            **{FEAST_TIMESTAMP: pd.to_datetime(entities[FEAST_TIMESTAMP], utc=True)}
        )
        if not Path(self.repo, "feature_store.yaml").is_file():
            raise InputError(
                f"retrain.base.feast.repo: {self.repo!r} has no feature_store.yaml",
                column="repo",
            )
        try:
            store = FeatureStore(repo_path=self.repo)
            wanted: Any = (
                store.get_feature_service(self.feature_service)
                if self.feature_service
                else list(self.features)
            )
            frame = store.get_historical_features(entity_df=entities, features=wanted).to_df()
        except Exception as error:  # Feast raises many unrelated types; each is the run's failure
            raise InputError(
                f"retrain.base.feast: {type(error).__name__}: {error}", column="feast"
            ) from None
        return _normalised(frame, "feast", LABEL, FEAST_TIMESTAMP)

    def to_dict(self) -> dict[str, Any]:
        """The config mapping :func:`parse_base` reads back."""
        inner: dict[str, Any] = {"repo": self.repo, "entities": self.entities.to_dict()}
        if self.feature_service:
            inner["feature_service"] = self.feature_service
        else:
            inner["features"] = list(self.features)
        return {"feast": inner}


def parse_base(
    data: object, *, key: str = "retrain.base"
) -> FileSource | CallableSource | FeastSource:
    """The source a ``base:`` mapping names; :class:`ConfigError` naming the bad field."""
    mapping = _mapping(data, key)
    kinds = [kind for kind in ("file", "callable", "feast") if kind in mapping]
    if len(kinds) != 1:
        found = f"both {' and '.join(kinds)}" if kinds else "none of them"
        raise ConfigError(
            f"{key}: expected exactly one of file, callable, feast; got {found}", key=key
        )
    kind = kinds[0]
    if kind == "feast":
        _known(mapping, key, ("feast",))
        return _feast(_mapping(mapping["feast"], f"{key}.feast"), f"{key}.feast")
    return _flat(mapping, key, kind)


def _flat(mapping: Mapping[str, Any], key: str, kind: str) -> FileSource | CallableSource:
    _known(mapping, key, (kind, "label", "timestamp", *(("format",) if kind == "file" else ())))
    label = _text(mapping.get("label", LABEL), f"{key}.label")
    timestamp = mapping.get("timestamp")
    if timestamp is not None:
        timestamp = _text(timestamp, f"{key}.timestamp")
    if kind == "callable":
        reference = _text(mapping["callable"], f"{key}.callable")
        if reference.count(":") != 1 or not all(part.strip() for part in reference.split(":")):
            raise ConfigError(
                f"{key}.callable: expected 'package.module:function', got {reference!r}",
                key=f"{key}.callable",
            )
        return CallableSource(reference, label=label, timestamp=timestamp)
    path = _text(mapping["file"], f"{key}.file")
    given = mapping.get("format")
    if given is None:
        suffix = Path(path).suffix.lower()
        if suffix not in _SUFFIXES:
            raise ConfigError(
                f"{key}.format: cannot tell the format of {path!r} from its suffix; "
                f"set format to one of {', '.join(FORMATS)}",
                key=f"{key}.format",
            )
        given = _SUFFIXES[suffix]
    if given not in FORMATS:
        raise ConfigError(
            f"{key}.format: expected one of {', '.join(FORMATS)}, got {given!r}",
            key=f"{key}.format",
        )
    return FileSource(path, str(given), label=label, timestamp=timestamp)


def _feast(mapping: Mapping[str, Any], key: str) -> FeastSource:
    _known(mapping, key, ("repo", "features", "feature_service", "entities"))
    for required in ("repo", "entities"):
        if required not in mapping:
            raise ConfigError(f"{key}.{required}: required", key=f"{key}.{required}")
    features = mapping.get("features")
    service = mapping.get("feature_service")
    if (features is None) == (service is None):
        raise ConfigError(
            f"{key}.features: give either features (['view:feature', ...]) or feature_service",
            key=f"{key}.features",
        )
    references: tuple[str, ...] = ()
    if features is not None:
        if isinstance(features, str) or not isinstance(features, Sequence) or not features:
            raise ConfigError(
                f"{key}.features: expected a non-empty list of 'view:feature', got {features!r}",
                key=f"{key}.features",
            )
        bad = [item for item in features if not isinstance(item, str) or item.count(":") != 1]
        if bad:
            raise ConfigError(
                f"{key}.features: expected 'view:feature' references, got {bad[0]!r}",
                key=f"{key}.features",
            )
        references = tuple(features)
    if "feast" in _mapping(mapping["entities"], f"{key}.entities"):
        raise ConfigError(
            f"{key}.entities: expected a file or a callable, not another feast source",
            key=f"{key}.entities",
        )
    entities = parse_base(mapping["entities"], key=f"{key}.entities")
    assert not isinstance(entities, FeastSource)  # excluded just above
    return FeastSource(
        repo=_text(mapping["repo"], f"{key}.repo"),
        entities=entities,
        features=references,
        feature_service=None if service is None else _text(service, f"{key}.feature_service"),
    )


def _normalised(frame: pd.DataFrame, kind: str, label: str, timestamp: str | None) -> pd.DataFrame:
    """``label`` and ``timestamp`` (epoch seconds) under the names the run uses."""
    if label not in frame.columns:
        raise InputError(
            f"retrain.base.{kind}: no label column {label!r}; the columns are "
            f"{', '.join(map(str, frame.columns))} (set label: to the one holding the label)",
            column=label,
        )
    renamed = frame.rename(columns={label: LABEL}) if label != LABEL else frame.copy()
    if timestamp is None:
        return renamed.drop(columns=[TIMESTAMP], errors="ignore")
    if timestamp not in frame.columns:
        raise InputError(
            f"retrain.base.{kind}.timestamp: no column {timestamp!r}", column=timestamp
        )
    times = frame[timestamp]
    if pd.api.types.is_numeric_dtype(times):
        seconds = times.astype(float)
    else:
        parsed = pd.to_datetime(times, utc=True)
        seconds = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return renamed.assign(**{TIMESTAMP: seconds.to_numpy(dtype=float)})


def _mapping(data: object, key: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{key}: expected a mapping (file:, callable: or feast:), got {type(data).__name__}",
            key=key,
        )
    return data


def _known(mapping: Mapping[str, Any], key: str, allowed: Sequence[str]) -> None:
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}: unknown key; expected {', '.join(allowed)}",
            key=f"{key}.{unknown[0]}",
        )


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}", key=key)
    return value


def _without_defaults(data: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return {**data, **{name: value for name, value in optional.items() if value is not None}}
