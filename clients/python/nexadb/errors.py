"""Exceptions: every failed call raises a NexaDBError carrying the gRPC status code.

Subclasses name the common codes so callers can catch what they handle, e.g.
`except nexadb.NotFoundError`. `err.code` is the grpc.StatusCode, `err.details`
the server's message.
"""
from __future__ import annotations

from typing import Optional

import grpc


class NexaDBError(Exception):
    """A call failed. .code is the grpc.StatusCode; .details the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str, method: Optional[str] = None):
        self.code = code
        self.details = details
        self.method = method
        where = f" ({method})" if method else ""
        super().__init__(f"{code.name}: {details}{where}")


class InvalidArgumentError(NexaDBError):
    """INVALID_ARGUMENT: a bad filter, update, pipeline, name or vector."""


class NotFoundError(NexaDBError):
    """NOT_FOUND."""


class AlreadyExistsError(NexaDBError):
    """ALREADY_EXISTS: an _id or collection that is taken."""


class AuthenticationError(NexaDBError):
    """UNAUTHENTICATED: missing or wrong API key."""


class PermissionDeniedError(NexaDBError):
    """PERMISSION_DENIED: e.g. a write with a read-only key."""


class ResourceExhaustedError(NexaDBError):
    """RESOURCE_EXHAUSTED: a message or limit too large."""


class UnavailableError(NexaDBError):
    """UNAVAILABLE: the server cannot be reached or is shutting down."""


class UnimplementedError(NexaDBError):
    """UNIMPLEMENTED: the server does not offer this method."""


class DeadlineExceededError(NexaDBError):
    """DEADLINE_EXCEEDED: the call's timeout passed."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def from_rpc_error(e: grpc.RpcError, method: Optional[str] = None) -> NexaDBError:
    """The NexaDBError for a failed call: grpc's error and grpc.aio's AioRpcError alike (both
    are grpc.RpcError with plain code() and details() methods)."""
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = (e.details() if hasattr(e, "details") else None) or str(e)
    return _BY_CODE.get(code, NexaDBError)(code, details, method)
