"""What NexaDB and AsyncNexaDB share about their connection: the channel (TLS, mTLS, message
size limits), the API key sent with every call, the per-call timeout, the stubs of the three
services, the redirects a cluster's follower answers, which send a call on to the leader
(Route), and the read concern (READ_CONCERNS) with the log index a session's reads wait for.
The two differ only in the grpc module that makes the channel (grpc or grpc.aio) and in how
they wait for an answer (client.py, aio.py).
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf import message_factory

from . import errors
from .v1 import admin_pb2, document_pb2, vector_pb2

DEFAULT_PORT = 6970  # gRPC. The brief's 6969 is the server's HTTP/JSON (REST) port.

_MESSAGE_LIMIT = 64 << 20  # documents and batches up to the server's own limit

# URL schemes from_url takes: False for plaintext, True for TLS.
URL_SCHEMES = {"grpc": False, "http": False, "grpcs": True, "https": True}

# The Endpoint attribute holding each service's stubs; a Call or Stream names one (_calls.py).
DOCS, VECS, ADMIN = "_docs", "_vecs", "_admin"

# Redirects to the leader one call follows; past them the refusal is raised.
MAX_REDIRECTS = 3

# The constructor's read_concern values: "linearizable" sends nothing (the leader answers
# reads, a follower passes them on); "local" asks the node called to answer from what it has
# applied; "session" asks it to answer once it has applied the largest log entry this client's
# calls were answered with (read-your-writes), "local" until there is one.
READ_CONCERNS = ("linearizable", "local", "session")
READ_CONCERN_HEADER, READ_AFTER_HEADER, LOG_INDEX_TRAILER = \
    "nexadb-read-concern", "nexadb-read-after", "nexadb-log-index"


class Service:
    """The methods of one gRPC service as callables on a shared channel, named as in the
    proto (db._docs.Find, ...). Built from the descriptor rather than the generated *_grpc
    stubs so one class serves a grpc and a grpc.aio channel alike."""

    def __init__(self, channel: Any, module: Any, service: str):
        desc = module.DESCRIPTOR.services_by_name[service]
        for m in desc.methods:
            out_cls = message_factory.GetMessageClass(m.output_type)
            path = f"/{desc.full_name}/{m.name}"
            make = channel.unary_stream if m.server_streaming else channel.unary_unary
            setattr(self, m.name, make(path, request_serializer=_serialize,
                                       response_deserializer=out_cls.FromString))


def _serialize(msg: Any) -> bytes:
    return msg.SerializeToString()


class Endpoint:
    """One server: its address (host:port), the channel to it and the stubs of the three
    services on that channel."""

    def __init__(self, address: str, channel: Any):
        self.address = address
        self.channel = channel
        self._docs = Service(channel, document_pb2, "DocumentService")
        self._vecs = Service(channel, vector_pb2, "VectorService")
        self._admin = Service(channel, admin_pb2, "AdminService")


def leader_redirect(e: grpc.RpcError, address: str) -> Optional[str]:
    """Where to send again a call that failed with e on the server at address: the leader's
    address when e is a cluster node's refusal as not the leader (UNAVAILABLE with the
    nexadb-leader trailer, which says the node ran nothing of the call, so a write is safe to
    send again) naming another node. None otherwise: any other error (UNAVAILABLE without the
    trailer is the transport's, after which a write may have been applied), no leader known
    (an empty trailer), or the leader named being address itself."""
    leader = errors.leader_trailer(e)
    return leader if leader and leader != address else None


def log_index_of(trailer: Any) -> Optional[int]:
    """The nexadb-log-index of a successful call's trailing metadata (grpc: a tuple of pairs;
    grpc.aio: Metadata): the log entry a write went into; None when there is none."""
    for key, value in trailer or ():
        if key == LOG_INDEX_TRAILER:
            value = value.decode() if isinstance(value, bytes) else value
            return int(value) if value.isdigit() else None
    return None


def parse_url(url: str) -> Tuple[str, int, bool]:
    """'grpc://host:port' or 'http://…' (plaintext), 'grpcs://…' or 'https://…' (TLS), or a
    bare 'host:port' (plaintext) -> (host, port, tls); the port defaults to 6970. Anything
    else (a path, a query, credentials in the URL, an unknown scheme) raises ValueError."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty string, not {url!r}")
    parts = urlsplit(url if "://" in url else "grpc://" + url)
    if parts.scheme not in URL_SCHEMES:
        raise ValueError(f"url {url!r}: scheme must be one of {sorted(URL_SCHEMES)}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"url {url!r}: only scheme://host:port, no path or query")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"url {url!r}: pass the API key as api_key, not in the URL")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"url {url!r}: the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"url {url!r}: no host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
    return host, port or DEFAULT_PORT, URL_SCHEMES[parts.scheme]


_C = TypeVar("_C", bound="Connection")


class Connection:
    """A channel to a NexaDB server and the stubs on it; subclasses set _grpc (grpc or
    grpc.aio), whose insecure_channel/secure_channel open it.

    Calls go to the current endpoint, at first (host, port). When a cluster's follower refuses
    a call naming the leader, the call is sent again there (Route) and the leader becomes the
    current endpoint. The channel of every address used stays open until close(): calls in
    flight in other threads or tasks may be using it.

    Every call carries the read concern's headers (_call_metadata); each successful unary
    call's nexadb-log-index trailer raises log_index (observe).

    Thread safety: calls may run from any number of threads (or tasks) at once; _lock guards
    _endpoints, _closed and _log_index, and _endpoint is replaced whole (one attribute store).
    """

    _grpc: Any

    @classmethod
    def from_url(cls: Type[_C], url: str, api_key: Optional[str] = None, **kwargs: Any) -> _C:
        """A client for url (parse_url: grpc:// or http:// plaintext, grpcs:// or https://
        TLS, default port 6970); api_key and the keyword arguments are the constructor's
        (root_certificates, client_cert, client_key, timeout, ...)."""
        host, port, tls = parse_url(url)
        return cls(host, port, api_key, tls=tls or bool(kwargs.pop("tls", False)), **kwargs)

    def __init__(self, host: str = "localhost", port: int = DEFAULT_PORT,
                 api_key: Optional[str] = None, *, tls: bool = False,
                 root_certificates: Optional[bytes] = None, client_cert: Optional[bytes] = None,
                 client_key: Optional[bytes] = None, timeout: Optional[float] = 30.0,
                 options: Sequence[Tuple[str, Any]] = (), read_concern: str = "linearizable"):
        if read_concern not in READ_CONCERNS:
            raise ValueError(f"read_concern must be one of {READ_CONCERNS}, not {read_concern!r}")
        if api_key is None:
            api_key = os.environ.get("NEXADB_API_KEY") or None
        if (client_cert is None) != (client_key is None):
            raise ValueError("client_cert and client_key go together")
        self.host = host
        self.port = int(port)
        self.timeout = timeout
        self.read_concern = read_concern
        self._log_index: Optional[int] = None
        self._metadata: Tuple[Tuple[str, str], ...] = (("x-api-key", api_key),) if api_key else ()
        creds = None
        if tls or root_certificates is not None or client_cert is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates,
                                                 private_key=client_key, certificate_chain=client_cert)
        self._creds = creds
        self._opts = [("grpc.max_receive_message_length", _MESSAGE_LIMIT),
                      ("grpc.max_send_message_length", _MESSAGE_LIMIT), *options]
        self._lock = threading.Lock()
        self._closed = False
        address = f"{host}:{self.port}"
        self._seed = self._endpoint = Endpoint(address, self._open(address, creds, self._opts))
        self._endpoints: Dict[str, Endpoint] = {address: self._seed}

    @property
    def address(self) -> str:
        """host:port of the server calls go to: the one the client was made with, or the
        cluster's leader once a follower has redirected a call there."""
        return self._endpoint.address

    @property
    def log_index(self) -> Optional[int]:
        """The largest log entry a successful call of this client was answered with (a
        cluster's write answers with the entry it went into; the trailer nexadb-log-index), or
        given to advance_log_index; None before any. With read_concern="session" every call
        asks the node to answer once it has applied that entry."""
        return self._log_index

    def advance_log_index(self, index: int) -> None:
        """Raises log_index to index (another client's log_index, say: that client's writes
        are then read by this one's "session" reads, on whichever node it calls)."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 1:
            raise ValueError(f"index must be a log index (an int from 1), not {index!r}")
        with self._lock:
            if self._log_index is None or index > self._log_index:
                self._log_index = index

    def _observe(self, trailer: Any) -> None:
        """Raises log_index to the nexadb-log-index of a successful call's trailer, if any."""
        index = log_index_of(trailer)
        if index is not None:
            self.advance_log_index(index)

    def _call_metadata(self) -> Tuple[Tuple[str, str], ...]:
        """What every call sends: the API key and the read concern's header, for "session"
        the log entry to wait for once there is one."""
        if self.read_concern == "linearizable":
            return self._metadata
        index = self._log_index if self.read_concern == "session" else None
        if index is None:
            return self._metadata + ((READ_CONCERN_HEADER, "local"),)
        return self._metadata + ((READ_AFTER_HEADER, str(index)),)

    @property
    def _channel(self) -> Any:
        return self._endpoint.channel

    def _open(self, target: str, creds: Optional[grpc.ChannelCredentials], opts: list) -> Any:
        if creds is None:
            return self._grpc.insecure_channel(target, options=opts)
        return self._grpc.secure_channel(target, creds, options=opts)

    def _endpoint_at(self, address: str) -> Optional[Endpoint]:
        """The endpoint for address, its channel opened on first use with the client's
        credentials and options; None once the client is closed."""
        with self._lock:
            if self._closed:
                return None
            ep = self._endpoints.get(address)
            if ep is None:
                ep = self._endpoints[address] = Endpoint(address, self._open(address, self._creds, self._opts))
            return ep

    def _close_channels(self) -> List[Any]:
        """Marks the client closed and hands over every channel it opened, for the caller to
        close (grpc's close() returns, grpc.aio's is awaited)."""
        with self._lock:
            self._closed = True
            return [ep.channel for ep in self._endpoints.values()]

    def _route(self, timeout: Optional[float]) -> "Route":
        return Route(self, timeout)

    def _invoke(self, op: Any, timeout: Optional[float]) -> Any:
        """Sends op (a Call or Stream) to the current endpoint, following no redirect."""
        return self._route(timeout).send(op)


class Route:
    """Where one call goes: the client's current endpoint, then the leader each refusal by a
    follower names (follow), at most MAX_REDIRECTS times. timeout (seconds, None: none) is
    the whole call's, redirects included."""

    def __init__(self, conn: Connection, timeout: Optional[float]):
        self._conn = conn
        self.endpoint = conn._endpoint
        self._hops = 0
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def send(self, op: Any, with_call: bool = False) -> Any:
        """Sends op (a Call or Stream) with the API key and the read concern's headers: a
        grpc channel answers (a response, or an iterator of them; with_call, for a grpc
        unary call: the response and the call, whose trailer holds the log index), a grpc.aio
        one gives the call to await or iterate."""
        rpc = getattr(getattr(self.endpoint, op.service), op.method)
        left = None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
        return (rpc.with_call if with_call else rpc)(op.request, timeout=left,
                                                     metadata=self._conn._call_metadata())

    def follow(self, e: grpc.RpcError) -> bool:
        """True when the call, failed with e, is to be sent again to self.endpoint: e is a
        follower's refusal naming another node as the leader (leader_redirect), redirects
        are left and the client is open. That endpoint becomes the client's current one.

        False: raise e. When e is the transport's UNAVAILABLE from a leader a redirect
        pointed the client at (it may have died), the client points back at the address it
        was made with, whose node names the next leader."""
        conn = self._conn
        leader = leader_redirect(e, self.endpoint.address) if self._hops < MAX_REDIRECTS else None
        ep = None if leader is None else conn._endpoint_at(leader)
        if ep is None:
            if (errors.code_of(e) == grpc.StatusCode.UNAVAILABLE and errors.leader_trailer(e) is None
                    and conn._endpoint is self.endpoint):
                conn._endpoint = conn._seed
            return False
        self._hops += 1
        self.endpoint = conn._endpoint = ep
        return True

