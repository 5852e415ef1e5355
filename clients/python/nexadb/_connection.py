"""What NexaDB and AsyncNexaDB share about their connection: the channel (TLS, mTLS, message
size limits), the API key sent with every call, the per-call timeout and the stubs of the
three services. The two differ only in the grpc module that makes the channel (grpc or
grpc.aio) and in how they wait for an answer (client.py, aio.py).
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Tuple, Type, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf import message_factory

from .v1 import admin_pb2, document_pb2, vector_pb2

DEFAULT_PORT = 6970  # gRPC. The brief's 6969 is the server's HTTP/JSON (REST) port.

_MESSAGE_LIMIT = 64 << 20  # documents and batches up to the server's own limit

# URL schemes from_url takes: False for plaintext, True for TLS.
URL_SCHEMES = {"grpc": False, "http": False, "grpcs": True, "https": True}

# The Connection attribute holding each service's stubs; a Call or Stream names one (_calls.py).
DOCS, VECS, ADMIN = "_docs", "_vecs", "_admin"


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
    """One channel to a NexaDB server and the stubs on it; subclasses set _grpc (grpc or
    grpc.aio), whose insecure_channel/secure_channel open it."""

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
                 options: Sequence[Tuple[str, Any]] = ()):
        if api_key is None:
            api_key = os.environ.get("NEXADB_API_KEY") or None
        if (client_cert is None) != (client_key is None):
            raise ValueError("client_cert and client_key go together")
        self.host = host
        self.port = int(port)
        self.timeout = timeout
        self._metadata: Tuple[Tuple[str, str], ...] = (("x-api-key", api_key),) if api_key else ()
        creds = None
        if tls or root_certificates is not None or client_cert is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates,
                                                 private_key=client_key, certificate_chain=client_cert)
        opts = [("grpc.max_receive_message_length", _MESSAGE_LIMIT),
                ("grpc.max_send_message_length", _MESSAGE_LIMIT), *options]
        self._channel = self._open(f"{host}:{self.port}", creds, opts)
        self._docs = Service(self._channel, document_pb2, "DocumentService")
        self._vecs = Service(self._channel, vector_pb2, "VectorService")
        self._admin = Service(self._channel, admin_pb2, "AdminService")

    def _open(self, target: str, creds: Optional[grpc.ChannelCredentials], opts: list) -> Any:
        if creds is None:
            return self._grpc.insecure_channel(target, options=opts)
        return self._grpc.secure_channel(target, creds, options=opts)

    def _invoke(self, op: Any, timeout: Optional[float]) -> Any:
        """Sends op (a Call or Stream) with the API key: a grpc channel answers (a response,
        or an iterator of them), a grpc.aio one gives the call to await or iterate."""
        rpc = getattr(getattr(self, op.service), op.method)
        return rpc(op.request, timeout=timeout, metadata=self._metadata)

