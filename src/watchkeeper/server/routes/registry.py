"""Model registry routes: register versions (artifact upload), list and read them with their
live health, move aliases, read an alias's history (as of a time) and roll it back.

Reads need the ``read`` scope, changes ``admin``; who registered a version or moved an alias is
the name of the request's token. The documents are built by :mod:`watchkeeper.registry.views`,
which the CLI calls too when it works on a database.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.registry.flavors import flavor_from_path
from watchkeeper.registry.registry import check_alias
from watchkeeper.registry.views import (
    alias_document,
    aliases_document,
    history_document,
    version_document,
    version_entry,
    versions_document,
)
from watchkeeper.server.auth import Principal, require
from watchkeeper.server.routes.signals import parse_instant
from watchkeeper.server.schemas import RegisteredVersion, VersionInfo, VersionList, answers
from watchkeeper.server.state import AppState, app_state
from watchkeeper.server.wire import (
    JsonResponse,
    read_body,
    read_model,
    require_media,
)

__all__ = ["router"]

router = APIRouter(tags=["registry"])

ARTIFACT: Final = "application/octet-stream"
_JSON_OBJECTS: Final = ("params", "metrics", "tags", "signature")


class AliasMove(BaseModel):
    """``PUT /v1/models/{model}/aliases/{alias}``."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="The registered version the alias points to.")
    reason: str = Field("", max_length=1000, description="Why (kept in the alias's history).")


class Rollback(BaseModel):
    """``POST /v1/models/{model}/aliases/{alias}/rollback`` (the body is optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000)


class Move(BaseModel):
    """One move of an alias (``to_version`` null: removed)."""

    id: int
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    moved_by: str
    moved_at: float
    reason: str


class AliasState(BaseModel):
    """Where an alias points after a change, and the move recorded (null: it already did)."""

    model: str
    alias: str
    version: int | None
    move: Move | None


class AliasInfo(BaseModel):
    """An alias and the version it points to now."""

    alias: str
    version: int
    updated_at: float


class AliasList(BaseModel):
    """``GET /v1/models/{model}/aliases``."""

    model: str
    aliases: list[AliasInfo]


class AliasHistory(BaseModel):
    """``GET /v1/models/{model}/aliases/{alias}/history``: the moves, newest first, and the
    version the alias points to now or pointed to at ``at``."""

    model: str
    alias: str
    at: float | None
    version: int | None
    history: list[Move]


def _json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}
    }


def _monitor_context(state: AppState) -> dict[str, Any]:
    return {
        "registry": state.model_registry,
        "monitor": state.service,
        "alerting": state.alerting,
    }


def _json_object(name: str, text: str | None) -> dict[str, Any] | None:
    """A query parameter holding a JSON object (params, metrics, tags, signature)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{name}: not valid JSON ({error})", key=name) from None
    if not isinstance(value, dict):
        raise ConfigError(
            f'{name}: expected a JSON object such as {{"auc": 0.91}}, got {text[:80]!r}',
            key=name,
        )
    return value


@router.post(
    "/v1/models/{model}/versions",
    summary="Register a version (the artifact is the body)",
    status_code=201,
    response_model=None,
    responses=answers(RegisteredVersion, 400, 404, 413, 415, 422, status=201),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {ARTIFACT: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def register_version(
    model: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("admin"))],
    flavor: Annotated[
        str | None,
        Query(
            description="sklearn, pickle, onnx, xgboost, lightgbm or pyfunc; default: from "
            "`filename`'s suffix."
        ),
    ] = None,
    filename: Annotated[
        str | None, Query(description="The artifact's file name (its suffix gives the flavor).")
    ] = None,
    trust: Annotated[
        bool, Query(description="Allow a pickle (or untrusted skops types): loading it runs code.")
    ] = False,
    entry_point: Annotated[
        str | None, Query(description="`package.module:factory` of a pyfunc version.")
    ] = None,
    description: Annotated[str, Query(max_length=10_000)] = "",
    params: Annotated[str | None, Query(description="A JSON object.")] = None,
    metrics: Annotated[str | None, Query(description='A JSON object, e.g. {"auc": 0.91}.')] = None,
    tags: Annotated[str | None, Query(description="A JSON object.")] = None,
    signature: Annotated[
        str | None, Query(description='A JSON object: {"features": {name: kind}}.')
    ] = None,
    code_revision: Annotated[str | None, Query(max_length=200)] = None,
    sha256: Annotated[
        str | None,
        Query(description="The artifact's sha256 (hex): the upload is refused if it differs."),
    ] = None,
) -> JsonResponse:
    """Register a new version of ``model`` from the artifact in the body.

    The artifact must load as its flavor (a pickle only with ``trust``) before anything is
    stored; the version number is the next one of the model.
    """
    state = app_state(request)
    require_media(request, ARTIFACT)
    # Everything the query says is checked before the body is read.
    if flavor is None and filename is None:
        raise ConfigError(
            "flavor: give the artifact's flavor (flavor=…) or its file name (filename=…)",
            key="flavor",
        )
    chosen = flavor_from_path(filename or "artifact", flavor)
    metadata = {
        name: _json_object(name, value)
        for name, value in zip(_JSON_OBJECTS, (params, metrics, tags, signature), strict=True)
    }
    body = await read_body(
        request, limit=state.settings.max_artifact_bytes, setting="max_artifact_bytes"
    )
    if not body:
        raise ConfigError(
            "body: the artifact is empty; send the model file as the body", key="body"
        )
    if sha256 is not None:
        actual = hashlib.sha256(body).hexdigest()
        if actual != sha256.strip().lower():
            raise ConfigError(
                f"sha256: the uploaded artifact hashes to {actual}, not {sha256!r}: it was "
                "changed or cut in transit; nothing was registered",
                key="sha256",
            )
    record = await run_in_threadpool(
        lambda: state.model_registry.register(
            model,
            body,
            flavor=chosen,
            trust=trust,
            entry_point=entry_point,
            description=description,
            params=metadata["params"],
            metrics=metadata["metrics"],
            tags=metadata["tags"],
            signature=metadata["signature"],
            code_revision=code_revision,
            registered_by=principal.name,
        )
    )
    document = await run_in_threadpool(version_document, state.model_registry, record)
    return JsonResponse(document, status_code=201)


@router.get(
    "/v1/models/{model}/versions",
    summary="List a model's versions: registered, seen in events, or both",
    response_model=None,
    responses=answers(VersionList, 404),
    dependencies=[Depends(require("read"))],
)
async def list_versions(model: str, request: Request) -> JsonResponse:
    """Registered versions and versions seen in events in one list, oldest first: each with its
    registration (when registered) and its live health (when it has had events)."""
    state = app_state(request)
    document = await run_in_threadpool(lambda: versions_document(model, **_monitor_context(state)))
    return JsonResponse(document)


@router.get(
    "/v1/models/{model}/versions/{version}",
    summary="One version with its registration and live health",
    response_model=None,
    responses=answers(VersionInfo, 404),
    dependencies=[Depends(require("read"))],
)
async def get_version(model: str, version: str, request: Request) -> JsonResponse:
    """The entry of ``version`` as the list gives it; 404 naming the versions there are."""
    state = app_state(request)
    entry = await run_in_threadpool(
        lambda: version_entry(model, version, **_monitor_context(state))
    )
    return JsonResponse(entry)


@router.get(
    "/v1/models/{model}/aliases",
    summary="A model's aliases and where they point",
    response_model=None,
    responses=answers(AliasList, 404),
    dependencies=[Depends(require("read"))],
)
async def list_aliases(model: str, request: Request) -> JsonResponse:
    """Every alias of ``model`` with its version now; 404 when it has no registered versions."""
    state = app_state(request)
    return JsonResponse(await run_in_threadpool(aliases_document, state.model_registry, model))


@router.put(
    "/v1/models/{model}/aliases/{alias}",
    summary="Point an alias at a version",
    response_model=None,
    responses=answers(AliasState, 400, 404, 413, 415, 422),
    openapi_extra=_json_body(AliasMove),
)
async def set_alias(
    model: str,
    alias: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("admin"))],
) -> JsonResponse:
    """Move ``model@alias`` to ``version`` and record who, when and why (``move`` is null when
    it already pointed there); 404 when the version is not registered."""
    state = app_state(request)
    check_alias(alias)
    body = await read_model(
        request,
        AliasMove,
        limit=state.settings.max_admin_body_bytes,
        setting="max_admin_body_bytes",
    )
    move = await run_in_threadpool(
        lambda: state.model_registry.set_alias(
            model, alias, body.version, moved_by=principal.name, reason=body.reason
        )
    )
    return JsonResponse(alias_document(model, alias, move, body.version))


@router.delete(
    "/v1/models/{model}/aliases/{alias}",
    summary="Remove an alias (kept in its history)",
    response_model=None,
    responses=answers(AliasState, 404, 422),
)
async def remove_alias(
    model: str,
    alias: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("admin"))],
    reason: Annotated[str, Query(max_length=1000)] = "",
) -> JsonResponse:
    """Unset ``model@alias``; 404 when it points nowhere."""
    state = app_state(request)
    registry = state.model_registry

    def remove() -> dict[str, Any]:
        current = {item.alias: item.version for item in registry.aliases(model)}
        if check_alias(alias) not in current:
            raise NotFoundError(
                f"{model}@{alias} is not set (aliases of {model!r}: "
                f"{', '.join(current) or 'none'})",
                kind="alias",
                name=f"{model}@{alias}",
            )
        registry.remove_alias(model, alias, moved_by=principal.name, reason=reason)
        return alias_document(model, alias, registry.history(model, alias, limit=1)[0], None)

    return JsonResponse(await run_in_threadpool(remove))


@router.get(
    "/v1/models/{model}/aliases/{alias}/history",
    summary="An alias's moves, and the version it pointed to at a time",
    response_model=None,
    responses=answers(AliasHistory, 404, 422),
    dependencies=[Depends(require("read"))],
)
async def alias_history(
    model: str,
    alias: str,
    request: Request,
    at: Annotated[
        str | None,
        Query(
            description="ISO-8601 time or epoch seconds: `version` is where the alias "
            "pointed then (null: nowhere)."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JsonResponse:
    """Every move of ``model@alias``, newest first; 404 when it was never set."""
    state = app_state(request)
    check_alias(alias)
    when = parse_instant(at, name="at")
    document = await run_in_threadpool(
        lambda: history_document(state.model_registry, model, alias, at=when, limit=limit)
    )
    return JsonResponse(document)


@router.post(
    "/v1/models/{model}/aliases/{alias}/rollback",
    summary="Move an alias back to the version it pointed to before its latest move",
    response_model=None,
    responses=answers(AliasState, 400, 404, 413, 415, 422),
    openapi_extra=_json_body(Rollback, required=False),
)
async def rollback_alias(
    model: str,
    alias: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("admin"))],
) -> JsonResponse:
    """Roll ``model@alias`` back one move (a second rollback undoes the first)."""
    state = app_state(request)
    check_alias(alias)
    reason = ""
    if request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers:
        body = await read_model(
            request,
            Rollback,
            limit=state.settings.max_admin_body_bytes,
            setting="max_admin_body_bytes",
        )
        reason = body.reason
    move = await run_in_threadpool(
        lambda: state.model_registry.rollback(model, alias, moved_by=principal.name, reason=reason)
    )
    return JsonResponse(alias_document(model, alias, move, move.to_version))
