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
    """UNAVAILABLE: the server cannot be reached or is shutting down, or (in a cluster) the
    node is not the leader and no leader is known, or the client followed as many redirects
    to the leader as it may (see NexaDB)."""


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


# The trailer of a cluster node's refusal of a call as not the leader (the server's
# SVC_LEADER_HEADER): the leader's client address, or "" while no leader is known.
LEADER_TRAILER = "nexadb-leader"


def code_of(e: grpc.RpcError) -> grpc.StatusCode:
    """e's status code (grpc's RpcError and grpc.aio's AioRpcError alike); UNKNOWN when it
    carries none."""
    return e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN


def leader_trailer(e: grpc.RpcError) -> Optional[str]:
    """The nexadb-leader trailer of an UNAVAILABLE answer: the leader's address, "" while the
    node knows none; None when e is anything else, UNAVAILABLE from the transport included.
    Its presence says the node ran nothing of the call."""
    if code_of(e) != grpc.StatusCode.UNAVAILABLE or not hasattr(e, "trailing_metadata"):
        return None
    for key, value in e.trailing_metadata() or ():  # grpc: a tuple of pairs; grpc.aio: Metadata
        if key == LEADER_TRAILER:
            return value.decode() if isinstance(value, bytes) else value
    return None


def from_rpc_error(e: grpc.RpcError, method: Optional[str] = None) -> NexaDBError:
    """The NexaDBError for a failed call: grpc's error and grpc.aio's AioRpcError alike (both
    are grpc.RpcError with plain code() and details() methods). A cluster node's refusal that
    names no leader (an empty nexadb-leader trailer) says so."""
    code = code_of(e)
    details = (e.details() if hasattr(e, "details") else None) or str(e)
    if leader_trailer(e) == "" and "no leader" not in details:
        details += " (no leader address to redirect to is known)"
    return _BY_CODE.get(code, NexaDBError)(code, details, method)
