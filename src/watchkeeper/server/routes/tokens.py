"""Token routes (admin scope): create (the secret is returned once), list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from watchkeeper.server.auth import issue_token, require, token_summary
from watchkeeper.server.schemas import ErrorBody, TokenCreate, TokenCreated, TokenInfo
from watchkeeper.server.state import app_state
from watchkeeper.server.wire import JsonResponse, read_model

__all__ = ["router"]

router = APIRouter(tags=["tokens"], dependencies=[Depends(require("admin"))])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)
}


@router.post(
    "/v1/tokens",
    summary="Create an API token",
    status_code=201,
    response_model=None,
    responses={201: {"model": TokenCreated}, **_ERRORS},
)
async def create_token(request: Request) -> JsonResponse:
    """Create a token with ``scopes``; the secret is in this response only."""
    state = app_state(request)
    limit = state.settings.max_admin_body_bytes
    payload = await read_model(request, TokenCreate, limit=limit, setting="max_admin_body_bytes")
    secret, record = await run_in_threadpool(issue_token, state.store, payload.name, payload.scopes)
    return JsonResponse({**token_summary(record), "token": secret}, status_code=201)


@router.get(
    "/v1/tokens",
    summary="List API tokens (never their secrets)",
    response_model=None,
    responses={200: {"model": dict[str, list[TokenInfo]]}, **_ERRORS},
)
async def list_tokens(request: Request) -> JsonResponse:
    """Every token with its scopes and revocation time."""
    state = app_state(request)
    records = await run_in_threadpool(state.store.list_tokens)
    return JsonResponse({"tokens": [token_summary(record) for record in records]})


@router.delete(
    "/v1/tokens/{name}",
    summary="Revoke an API token",
    response_model=None,
    responses={200: {"model": TokenInfo}, **_ERRORS},
)
async def revoke_token(name: str, request: Request) -> JsonResponse:
    """Revoke ``name`` at once; requests with it get 401 from now on."""
    state = app_state(request)
    record = await run_in_threadpool(state.store.revoke_token, name)
    return JsonResponse(token_summary(record))
