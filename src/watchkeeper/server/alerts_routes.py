"""HTTP routes of the alerting engine: rules, alerts, history, groups and silences.

``alerts_router(engine)`` returns a router that ``create_app`` includes. Reads need the
``read`` scope; changing rules and silences needs ``admin``. Errors are the domain errors of
:mod:`watchkeeper.errors`, turned into responses by :mod:`watchkeeper.server.errors`; a rules
body that does not validate answers 422 with the path of the bad value, e.g.
``rules[2].for: expected a duration such as 5m, got 'soon'``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import yaml
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from watchkeeper._yaml import load_yaml
from watchkeeper.alerts.config import AlertingConfig, parse_rules
from watchkeeper.alerts.defaults import pack_options
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.alerts.model import parse_duration
from watchkeeper.alerts.outbox import OutboxItem
from watchkeeper.alerts.rules import RuleSpec
from watchkeeper.alerts.views import (
    alerts_document,
    history_document,
    prometheus_document,
    rules_document,
    silence_document,
)
from watchkeeper.config import Settings
from watchkeeper.errors import ConfigError
from watchkeeper.server.auth import Principal, require
from watchkeeper.server.errors import unsupported_media_type
from watchkeeper.server.schemas import (
    AlertGroups,
    AlertHistory,
    AlertList,
    Notifications,
    PrometheusExport,
    RulesAdded,
    RulesApplied,
    RuleSet,
    SilenceInfo,
    SilenceList,
    SilenceRequest,
    answers,
    json_body,
)
from watchkeeper.server.wire import parse_json, read_body, read_model

__all__ = ["alerts_router"]

_RULE_LIST: Final = {"type": "array", "items": {"type": "object"}}
_RULES_FILE: Final = {"type": "object", "properties": {"rules": _RULE_LIST}}
_PROMETHEUS_RULES_FILE: Final = {
    "type": "object",
    "properties": {"groups": {"type": "array", "items": {"type": "object"}}},
    "required": ["groups"],
}
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
_JSON_TYPE = "application/json"


def _integration_type(config: AlertingConfig, item: OutboxItem) -> str:
    """``slack``, ``webhook``…: the kind of the receiver's integration the item goes to."""
    receiver = config.receivers.get(item.receiver)
    if receiver is None or not 0 <= item.integration < len(receiver.integrations):
        return "unknown"
    return receiver.integrations[item.integration][0].removesuffix("_configs")


def _notification(item: OutboxItem, config: AlertingConfig) -> dict[str, Any]:
    return {
        "key": item.key,
        "receiver": item.receiver,
        "integration": _integration_type(config, item),
        "integration_index": item.integration,
        "status": item.status.value,
        "attempts": item.attempts,
        "created_at": item.created_at,
        "delivered_at": item.delivered_at,
        "last_error": item.last_error,
        "message": dict(item.payload),
    }


def _parse_rules_body(body: bytes, content_type: str) -> list[RuleSpec]:
    media = content_type.split(";")[0].strip().lower()
    if media == _JSON_TYPE:
        data = parse_json(body)
    elif media in _YAML_TYPES or not media:
        try:
            data = load_yaml(body)
        except yaml.YAMLError as error:
            raise ConfigError(f"rules: not valid YAML: {error}", key="rules") from error
    else:
        raise unsupported_media_type(media, (_JSON_TYPE, "application/yaml"))
    return parse_rules(data if data is not None else [])


def alerts_router(
    engine: AlertingEngine, *, max_body_bytes: int = Settings().max_admin_body_bytes
) -> APIRouter:
    """The ``/v1/rules``, ``/v1/alerts`` and ``/v1/silences`` routes over ``engine``.

    Rules and silence bodies past ``max_body_bytes`` are refused with 413 while they are read.
    """
    router = APIRouter(tags=["alerts"])
    read = [Depends(require("read"))]
    admin = [Depends(require("admin"))]

    @router.get(
        "/v1/rules",
        dependencies=read,
        summary="List alert rules",
        response_model=None,
        responses=answers(RuleSet),
    )
    def list_rules() -> dict[str, Any]:
        return rules_document(engine.rules())

    @router.put(
        "/v1/rules",
        dependencies=admin,
        summary="Apply alert rules (YAML rules file or JSON list)",
        response_model=None,
        responses=answers(RulesApplied, 400, 413, 415, 422),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/yaml": {"schema": _RULES_FILE},
                    "application/json": {"schema": {"anyOf": [_RULES_FILE, _RULE_LIST]}},
                },
            }
        },
    )
    async def put_rules(
        request: Request,
        replace: Annotated[
            bool, Query(description="true: the body is the whole rule set; false: merge by name")
        ] = True,
    ) -> dict[str, Any]:
        body = await read_body(request, limit=max_body_bytes, setting="max_admin_body_bytes")
        content_type = request.headers.get("content-type", "")
        specs = await run_in_threadpool(_parse_rules_body, body, content_type)
        applied = await run_in_threadpool(engine.apply_rules, specs, replace=replace)
        return {"applied": len(specs), **rules_document(applied)}

    @router.get(
        "/v1/rules/export/prometheus",
        dependencies=read,
        summary="The rules as a Prometheus rules file",
        response_model=None,
        responses={
            **answers(PrometheusExport, 422),
            200: {
                "model": PrometheusExport,
                "description": "The export (JSON), or the rules file itself with format=yaml",
                "content": {"application/yaml": {"schema": _PROMETHEUS_RULES_FILE}},
            },
        },
    )
    def export_prometheus(
        format: Annotated[Literal["json", "yaml"], Query()] = "json",
    ) -> Any:
        export = engine.export_prometheus()
        if format == "yaml":
            return Response(export.yaml, media_type="application/yaml")
        return prometheus_document(export)

    @router.post(
        "/v1/models/{model}/rules/defaults",
        dependencies=admin,
        summary="Add the default rule pack of a model",
        response_model=None,
        responses=answers(RulesAdded, 404),
    )
    def add_defaults(model: str, request: Request) -> dict[str, Any]:
        service = getattr(getattr(request.app.state, "watchkeeper", None), "service", None)
        pack: dict[str, float] = {}
        if service is not None:
            # Unknown models answer 404 instead of getting rules that never match.
            pack = pack_options(service.get_model(model))
        added = engine.add_default_rules(model, **pack)
        return {"added": [spec.name for spec in added], **rules_document(engine.rules())}

    @router.get(
        "/v1/alerts",
        dependencies=read,
        summary="Pending, firing and resolved alerts",
        response_model=None,
        responses=answers(AlertList, 422),
    )
    def list_alerts(
        state: Annotated[
            Literal["all", "pending", "firing", "resolved"], Query(description="filter by state")
        ] = "all",
    ) -> dict[str, Any]:
        return alerts_document(engine, state)

    @router.get(
        "/v1/alerts/history",
        dependencies=read,
        summary="Alert state changes",
        response_model=None,
        responses=answers(AlertHistory, 422),
    )
    def alert_history(
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> dict[str, Any]:
        return history_document(engine, limit)

    @router.get(
        "/v1/alerts/groups",
        dependencies=read,
        summary="Aggregation groups",
        response_model=None,
        responses=answers(AlertGroups),
    )
    def alert_groups() -> dict[str, Any]:
        return {
            "groups": [
                {
                    "key": group.key,
                    "receiver": group.receiver,
                    "labels": dict(group.labels),
                    "next_flush": group.next_flush,
                    "fingerprints": list(group.fingerprints),
                }
                for group in engine.groups()
            ]
        }

    @router.get(
        "/v1/alerts/notifications",
        dependencies=read,
        summary="Notifications and delivery",
        response_model=None,
        responses=answers(Notifications, 422),
    )
    def notifications(
        status: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> dict[str, Any]:
        items = engine.notifications(status=status, limit=limit)
        return {"notifications": [_notification(item, engine.config) for item in items]}

    @router.get(
        "/v1/silences",
        dependencies=read,
        summary="Silences",
        response_model=None,
        responses=answers(SilenceList),
    )
    def list_silences() -> dict[str, Any]:
        now = engine.now()
        return {"silences": [silence_document(silence, now) for silence in engine.silences()]}

    @router.post(
        "/v1/silences",
        status_code=201,
        summary="Create a silence",
        response_model=None,
        responses=answers(SilenceInfo, 400, 413, 415, 422, status=201),
        openapi_extra=json_body(SilenceRequest),
    )
    async def create_silence(
        request: Request, principal: Annotated[Principal, Depends(require("admin"))]
    ) -> dict[str, Any]:
        body = await read_model(
            request, SilenceRequest, limit=max_body_bytes, setting="max_admin_body_bytes"
        )
        duration = None if body.duration is None else parse_duration(body.duration, key="duration")
        silence = await run_in_threadpool(
            lambda: engine.add_silence(
                matchers=body.matchers,
                created_by=body.created_by or principal.name,
                comment=body.comment,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                duration=duration,
            )
        )
        return silence_document(silence, engine.now())

    @router.get(
        "/v1/silences/{silence_id}",
        dependencies=read,
        summary="One silence",
        response_model=None,
        responses=answers(SilenceInfo, 404),
    )
    def get_silence(silence_id: str) -> dict[str, Any]:
        return silence_document(engine.get_silence(silence_id), engine.now())

    @router.delete(
        "/v1/silences/{silence_id}",
        dependencies=admin,
        summary="Expire a silence",
        response_model=None,
        responses=answers(SilenceInfo, 404),
    )
    def expire_silence(silence_id: str) -> dict[str, Any]:
        return silence_document(engine.expire_silence(silence_id), engine.now())

    return router
