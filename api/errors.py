"""The one error shape every failure takes, validation and middleware refusals included:

    {"error": {"code": "validation_failed", "message": "...",
               "fields": [{"field": "0.value", "rule": "greater_than_equal", "message": "..."}]}}

`code` is stable and machine-readable; `message` is for people; `fields` is present (maybe empty) on every error
and names each offending field (a dotted path into the body; `query.count`, `header.x-api-key` elsewhere).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_failed",
          429: "rate_limited", 503: "unavailable"}


class FieldProblem(BaseModel):
    field: str
    rule: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldProblem]


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


class ApiError(Exception):
    """Raise anywhere in a request to answer with the error shape."""

    def __init__(self, status_code: int, code: str, message: str, fields: Sequence[FieldProblem] = (),
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.fields = list(fields)
        self.headers = dict(headers or {})


def unauthorized(message: str, scheme: str = "Bearer") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": scheme})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def error_response(status_code: int, code: str, message: str, fields: Iterable[FieldProblem] = (),
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, fields=list(fields)))
    return JSONResponse(body.model_dump(), status_code=status_code, headers=dict(headers or {}))


def field_path(location: Sequence[int | str]) -> str:
    """('body', 3, 'value') → '3.value'; ('query', 'count') → 'query.count'; ('body',) → 'body'."""
    parts = [str(part) for part in location]
    if parts and parts[0] == "body" and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def problems(errors: Iterable[Mapping[str, Any]], prefix: Sequence[int | str] = ()) -> list[FieldProblem]:
    """Pydantic's error dicts → FieldProblems; `prefix` is prepended to each location (e.g. a batch index)."""
    return [FieldProblem(field=field_path((*prefix, *error["loc"])), rule=str(error["type"]),
                         message=str(error["msg"]).removeprefix("Value error, "))
            for error in errors]


def validation_error(fields: Sequence[FieldProblem]) -> ApiError:
    first = fields[0]
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    return ApiError(422, "validation_failed", f"{first.field}: {first.message}{more}", fields)


def invalid(field: str, rule: str, message: str) -> ApiError:
    """A 422 about one field, for checks made outside pydantic."""
    return validation_error([FieldProblem(field=field, rule=rule, message=message)])


def from_validation_error(error: ValidationError, prefix: Sequence[int | str] = ()) -> ApiError:
    return validation_error(problems(error.errors(include_url=False), prefix))


def install(app: FastAPI) -> None:
    """Route every exception type the app can meet through the one shape."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status_code, exc.code, exc.message, exc.fields, exc.headers)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        error = validation_error(problems(exc.errors()))
        return error_response(error.status_code, error.code, error.message, error.fields)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODES.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal", "internal server error; it has been logged")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
