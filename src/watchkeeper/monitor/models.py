"""Registered models: registration with reference data, replacing the reference, deletion.

The reference profile is what live windows compare against: the model's features (and outputs)
profiled once from the training data, categories by their canonical labels as events name them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from watchkeeper.errors import ConfigError
from watchkeeper.frame import as_dataframe
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.state import ModelState, MonitorState, profile_id
from watchkeeper.profiles import DatasetProfile, profile_frame
from watchkeeper.schema import ColumnKind, ResolvedSchema, Schema, infer_schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "delete_model",
    "inferred_spec",
    "list_versions",
    "reference_profile",
    "register_model",
    "set_reference",
    "update_model",
]

_PROFILED = frozenset({ColumnKind.NUMERIC, ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN})


def register_model(
    shared: MonitorState, spec: ModelSpec, reference: pd.DataFrame | None
) -> ModelSpec:
    """Register ``spec``; features are inferred from ``reference`` when empty.

    Raises ConflictError when the name is taken.
    """
    profile: DatasetProfile | None = None
    if reference is not None:
        frame = as_dataframe(reference, name="reference")
        spec = inferred_spec(spec, frame)
        profile = reference_profile(spec, frame)
    elif not spec.features:
        raise ConfigError(
            "features: give the feature kinds, or reference data to infer them from",
            key="features",
        )
    with shared.timed("create_model"):
        record = shared.store.create_model(spec.name, spec.to_dict())
    reference_id = None
    if profile is not None:
        data = profile.to_bytes()
        with shared.timed("put_reference_profile"):
            shared.store.put_reference_profile(record.id, data, rows=profile.rows)
        reference_id = profile_id(data)
    state = ModelState.of(spec, record.id, profile, reference_id)
    with shared.lock:
        shared.models[spec.name] = state
    return spec


def update_model(
    shared: MonitorState, spec: ModelSpec, *, expected_version: int | None = None
) -> tuple[ModelSpec, int]:
    """Replace the config of the registered model ``spec.name``; returns it and its new
    config version (``expected_version``: the version the caller read; StaleVersionError when
    it is no longer the stored one).

    What the model keeps (docs/service.md, "Updating a model"): its events, stored windows,
    versions, reference profile and alert rules. Open windows of a length the new spec still
    has go on; an open window of a removed length takes no more events and closes at its end
    as usual; a new length starts with the window of the next event. When the columns the
    windows profile change (features, prediction, probabilities, task), open windows stop
    profiling features, as on a new reference, and later windows follow the new config: the
    reference keeps the columns still profiled, and a feature the reference lacks carries no
    drift until new reference data is set. Events follow the config in force (a removed
    feature is then an unknown one).
    """
    state = shared.model(spec.name)
    if spec.features == {} and state.spec.features:
        raise ConfigError(
            "features: give the feature kinds (an update does not infer them)", key="features"
        )
    with shared.timed("update_model_config"):
        record = shared.store.update_model_config(
            spec.name, spec.to_dict(), expected_version=expected_version
        )
    reference, reference_id = state.reference, state.reference_id
    if reference is not None:
        # The reference keeps the columns the new config still profiles (a removed feature's
        # profile would have no window profile to compare with), stored so a restart agrees.
        kept = _profiled_columns(spec) & set(reference.columns)
        if kept != set(reference.columns):
            columns = {name: reference.columns[name] for name in reference.columns if name in kept}
            reference = DatasetProfile(rows=reference.rows, columns=columns)
            data = reference.to_bytes()
            with shared.timed("put_reference_profile"):
                shared.store.put_reference_profile(state.model_id, data, rows=reference.rows)
            reference_id = profile_id(data)
    updated = ModelState.of(spec, state.model_id, reference, reference_id)
    with shared.lock:
        shared.models[spec.name] = updated
        if updated.plan != state.plan or reference_id != state.reference_id:
            for window in shared.open.get(spec.name, {}).values():
                window.drop_profile()
    return spec, record.config_version


def _profiled_columns(spec: ModelSpec) -> set[str]:
    """The columns a reference profile of ``spec`` may hold: its features and outputs."""
    outputs = {spec.prediction} if spec.prediction is not None else set()
    return set(spec.features) | outputs | set((spec.proba or {}).values())


def set_reference(shared: MonitorState, model: str, reference: pd.DataFrame) -> dict[str, Any]:
    """Replace the reference data of ``model``; returns a summary of the new profile.

    Windows open at this moment stop profiling features (their bins belong to the old
    reference) and so carry no drift or quality signals; later windows use the new one.
    """
    state = shared.model(model)
    frame = as_dataframe(reference, name="reference")
    profile = reference_profile(state.spec, frame)
    data = profile.to_bytes()
    with shared.timed("put_reference_profile"):
        shared.store.put_reference_profile(state.model_id, data, rows=profile.rows)
    updated = ModelState.of(state.spec, state.model_id, profile, profile_id(data))
    with shared.lock:
        shared.models[model] = updated
        for window in shared.open.get(model, {}).values():
            window.drop_profile()
    return {
        "model": model,
        "rows": profile.rows,
        "columns": {name: kind.value for name, kind in profile.kinds.items()},
        "reference_id": updated.reference_id,
    }


def delete_model(shared: MonitorState, model: str) -> None:
    """Delete ``model`` with its versions, events, labels, feedback and windows."""
    with shared.timed("delete_model"):
        shared.store.delete_model(model)
    with shared.lock:
        for table in (
            shared.models,
            shared.open,
            shared.marked,
            shared.pending,
            shared.last_closed,
            shared.last_event,
            shared.stored_last_event,
        ):
            table.pop(model, None)
        shared.known.pop(model, None)


def list_versions(shared: MonitorState, model: str) -> list[dict[str, Any]]:
    """Versions of ``model`` seen in events (or recorded), oldest first."""
    state = shared.model(model)
    with shared.timed("list_versions"):
        records = shared.store.list_versions(state.model_id)
    return [
        {"version": r.version, "created_at": r.created_at, "metadata": dict(r.metadata)}
        for r in records
    ]


def reference_profile(spec: ModelSpec, frame: pd.DataFrame) -> DatasetProfile:
    """The profile of ``spec``'s features and outputs in the reference data ``frame``.

    A profiled feature (numeric, categorical, boolean) of the spec that the reference lacks is
    an error naming it and the columns there are: its drift would otherwise never be measured,
    silently (a typo in the spec).
    """
    missing = [
        name
        for name, kind in spec.features.items()
        if kind in _PROFILED and name not in frame.columns
    ]
    if missing:
        columns = [str(column) for column in frame.columns]
        raise ConfigError(
            f"reference data of model {spec.name!r} lacks the feature(s) "
            f"{', '.join(missing[:10])}; its columns are {', '.join(columns[:20])}"
            f"{', …' if len(columns) > 20 else ''}. Fix the model config or the reference data",
            key="reference",
        )
    features = {
        name: kind
        for name, kind in spec.features.items()
        if kind in _PROFILED and name in frame.columns
    }
    outputs: dict[str, ColumnKind] = {}
    if spec.prediction is not None and spec.prediction in frame.columns:
        outputs[spec.prediction] = spec.prediction_kind
    for column in (spec.proba or {}).values():
        if column in frame.columns and column not in features:
            outputs[column] = ColumnKind.NUMERIC
    kinds = features | outputs
    if not kinds:
        raise ConfigError(
            f"reference data of model {spec.name!r} holds none of its features "
            f"({', '.join(list(spec.features)[:10])}); upload the training data with those columns",
            key="reference",
        )
    selected = frame[list(kinds)].copy()
    for name, kind in kinds.items():
        if kind is ColumnKind.CATEGORICAL:
            selected[name] = _canonical_categories(selected[name])
    resolved = ResolvedSchema(
        features=features,
        outputs=outputs,
        target=None,
        target_kind=None,
        prediction=spec.prediction if spec.prediction in outputs else None,
        proba={},
        task=spec.task,
    )
    return profile_frame(selected, resolved)


def _canonical_categories(series: pd.Series) -> pd.Series:
    """Reference categories by their canonical labels, as live events name them (``True`` →
    ``"1"``, ``2.0`` → ``"2"``; :mod:`watchkeeper.labels`)."""
    import pandas as pd

    from watchkeeper.labels import canonical_labels

    return pd.Series(canonical_labels(series), index=series.index, dtype=object)


def inferred_spec(spec: ModelSpec, frame: pd.DataFrame) -> ModelSpec:
    """``spec`` with its features inferred from the reference data when none were given."""
    if spec.features:
        return spec
    roles = {spec.prediction, *(spec.proba or {}).values()} & {str(c) for c in frame.columns}
    resolved = infer_schema(frame, Schema(exclude=frozenset(c for c in roles if c)))
    return dataclasses.replace(spec, features=dict(resolved.features))
