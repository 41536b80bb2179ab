"""The JSON response class of every route: orjson-encoded, NaN and infinity as ``null``."""

from __future__ import annotations

from typing import Any, Final

import orjson
from starlette.responses import JSONResponse

__all__ = ["JsonResponse"]

_ORJSON_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class JsonResponse(JSONResponse):
    """A JSON response encoded by orjson (a JSONResponse, so OpenAPI documents it as JSON)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=_ORJSON_OPTIONS)
