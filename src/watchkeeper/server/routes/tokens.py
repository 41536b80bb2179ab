"""Token routes (admin scope): create (the secret is returned once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from watchkeeper.server.auth import issue_token, require, token_summary
from watchkeeper.server.schemas import (
    TokenCreate,
    TokenCreated,
    TokenInfo,
    TokenList,
    answers,
    json_body,
)
from watchkeeper.server.state import app_state
from watchkeeper.server.wire import JsonResponse, read_model

__all__ = ["router"]

router = APIRouter(tags=["tokens"], dependencies=[Depends(require("admin"))])


@router.post(
    "/v1/tokens",
    summary="Create an API token",
    status_code=201,
    response_model=None,
    responses=answers(TokenCreated, 400, 409, 413, 415, 422, status=201),
    openapi_extra=json_body(TokenCreate),
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
    responses=answers(TokenList),
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
    responses=answers(TokenInfo, 404),
)
async def revoke_token(name: str, request: Request) -> JsonResponse:
    """Revoke ``name`` at once; requests with it get 401 from now on."""
    state = app_state(request)
    record = await run_in_threadpool(state.store.revoke_token, name)
    return JsonResponse(token_summary(record))
