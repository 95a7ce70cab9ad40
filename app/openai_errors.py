"""OpenAI's error shape, {"error": {message, type, param, code}}, for every reply under /v1."""
from __future__ import annotations

from typing import Any

# What OpenAI calls each kind of failure, by status.
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
          404: "invalid_request_error", 413: "invalid_request_error",
          422: "invalid_request_error", 429: "rate_limit_error"}
_CODES = {401: "invalid_api_key", 404: "not_found", 413: "request_too_large",
          429: "rate_limit_exceeded", 503: "service_unavailable"}


def error_body(status: int, message: str, code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"),
                      "param": param, "code": code or _CODES.get(status)}}


def is_v1_path(path: str, root_path: str = "") -> bool:
    """Is this request path one of the OpenAI-compatible routes (behind an optional prefix)?"""
    if root_path and path.startswith(root_path):
        path = path[len(root_path):]
    return path.startswith("/v1/")
