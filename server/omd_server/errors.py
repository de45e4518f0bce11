"""The one error shape of the API and the exceptions that produce it.

Every error answer, whatever raised it (request validation, a refused reading, an unknown
meter, storage trouble, an unknown route), is `{"detail": [{"loc": [...], "msg": "...",
"type": "..."}]}` with `loc` pointing into the request (`["body", "readings", 3, "watts"]`,
`["query", "start"]`, `["path", "meter_id"]`). Routers raise ApiError; nothing returns an error
response by hand.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .storage import StorageUnavailable

log = logging.getLogger("omd_server")

_MAX_MSG = 240
RETRY_AFTER_S = 30


@dataclass
class Problem:
    loc: list[Any]
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": self.loc, "msg": self.msg[:_MAX_MSG], "type": self.type}


class ApiError(Exception):
    """An error answer: status code and the problems that explain it."""

    def __init__(self, status: int, problems: list[Problem] | Problem,
                 headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.problems = problems if isinstance(problems, list) else [problems]
        self.headers = headers

    @classmethod
    def one(cls, status: int, loc: list[Any], msg: str, type: str) -> ApiError:
        return cls(status, Problem(loc, msg, type))


def unavailable(exc: Exception, what: str = "storage unavailable",
                type: str = "storage.unavailable") -> ApiError:
    """503 with Retry-After: a service the request needs (database, disk, chain) is in trouble;
    never for anything about the request itself."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    log.error("%s: %s", what, reason)
    return ApiError(503, Problem([], f"{what}, nothing was stored: {reason}", type),
                    headers={"Retry-After": str(RETRY_AFTER_S)})


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    """JSON that is always valid JSON: a non-finite float (an old database row, an overflowing
    sum) is written as null instead of failing the whole answer."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")
        except ValueError:
            log.warning("non-finite number in an answer written as null")
            return json.dumps(_finite(content), ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")


def error_response(status: int, problems: list[Problem],
                   headers: dict[str, str] | None = None) -> SafeJSONResponse:
    return SafeJSONResponse({"detail": [p.as_dict() for p in problems]}, status_code=status,
                            headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.problems, exc.headers)

    @app.exception_handler(StorageUnavailable)
    async def _storage(request: Request, exc: StorageUnavailable):
        e = unavailable(exc)
        return error_response(e.status, e.problems, e.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        problems = [Problem(list(e.get("loc", ())), str(e.get("msg", "")), str(e.get("type", "")))
                    for e in exc.errors()]
        return error_response(422, problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, [Problem([], str(exc.detail), "http")],
                              getattr(exc, "headers", None))
