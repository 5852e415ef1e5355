"""What calls answer, as Python values: the same for NexaDB and AsyncNexaDB, which hand each
response message to these functions (through a Call's result, _calls.py) once it arrives.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional

from ._convert import from_document
from .v1 import common_pb2, document_pb2

Document = Dict[str, Any]


class Results(list):
    """What find() and aggregate() return: a list of the documents (len, indexing,
    truthiness, iteration; read once from the server), with what the last response said:
    next_page_token (pass it back as page_token to read on after a limit; '' when
    everything was sent) and explain (the plan and its counters, when explain=True)."""

    next_page_token: str = ""
    explain: Optional[Dict[str, Any]] = None


def add_page(out: Results, msg: Any) -> None:
    """Adds one message of a Find or Aggregate stream to out: its documents, and (Find only)
    where the next page starts and, on the last page, the plan."""
    out.extend(from_document(d) for d in msg.documents)
    fields = msg.DESCRIPTOR.fields_by_name
    if "next_page_token" in fields:
        out.next_page_token = msg.next_page_token
    if "explain" in fields and msg.HasField("explain"):
        out.explain = from_document(msg.explain)


class BaseCursor:
    """What Cursor and AsyncCursor share: their stream (a _calls.Stream), where each run of it
    goes (route() gives a new _connection.Route, which follows a follower's redirect to the
    leader until the first page arrives), and the calls being read now, which closing the
    cursor cancels."""

    def __init__(self, route: Callable[[], Any], stream: Any):
        self._route = route
        self._stream = stream
        self._method: str = stream.method
        self._item: Callable[[Any], Any] = stream.item  # one entry of a page -> what iterating yields
        self._calls: List[Any] = []

    def _start(self, route: Any) -> Any:
        """Sends the stream on route: a grpc iterator or a grpc.aio call, which close() cancels
        until the caller takes it out of _calls."""
        call = route.send(self._stream)
        self._calls.append(call)
        return call

    def _cancel_all(self) -> None:
        for call in list(self._calls):
            call.cancel()


class SearchResult(NamedTuple):
    """One vector search hit; unpacks as the brief's (doc_id, similarity, doc)."""
    doc_id: str
    similarity: float
    doc: Document


class VectorDocument(NamedTuple):
    """A stored document with its stored vector (unit length under cosine), as a vector
    collection's find yields them; unpacks as (doc, vector)."""
    doc: Document
    vector: List[float]


def vector_document(vd: Any) -> VectorDocument:
    return VectorDocument(from_document(vd.document), list(vd.vector))


class _Hit(SearchResult):
    """A SearchResult that also carries .vector (empty unless include_vectors)."""
    vector: List[float]


def hits(results: Any) -> List[SearchResult]:
    """One search's results, best first."""
    out = []
    for h in results:
        hit = _Hit(h.document_id, float(h.similarity), from_document(h.document))
        hit.vector = list(h.vector)
        out.append(hit)
    return out


def message_dict(msg: Any) -> Dict[str, Any]:
    """A plain dict of a response message with every field present (defaults included):
    numbers as int/float, enums as their lower-case name without the type prefix
    (VECTOR_METRIC_COSINE -> 'cosine'), nested messages as dicts. Generic over the
    descriptor, so fields the server adds later appear without a client change."""
    out: Dict[str, Any] = {}
    for f in msg.DESCRIPTOR.fields:
        v = getattr(msg, f.name)
        if f.type == f.TYPE_MESSAGE:
            if f.message_type.full_name == "nexadb.v1.Document":
                conv = from_document
            else:
                conv = message_dict
            if _is_repeated(f):
                out[f.name] = [conv(x) for x in v]
            elif conv is from_document and not msg.HasField(f.name):
                out[f.name] = None
            else:  # an unset message reads as its defaults, as in protobuf itself
                out[f.name] = conv(v)
        elif f.type == f.TYPE_ENUM:
            names = [_enum_name(f.enum_type, x) for x in v] if _is_repeated(f) else _enum_name(f.enum_type, v)
            out[f.name] = names
        else:
            out[f.name] = list(v) if _is_repeated(f) else v
    return out


def _is_repeated(f: Any) -> bool:
    rep = getattr(f, "is_repeated", None)  # protobuf >= 5.29; .label is deprecated there
    return rep if rep is not None else f.label == f.LABEL_REPEATED


def _enum_name(enum_type: Any, number: int) -> Any:
    ev = enum_type.values_by_number.get(number)
    if ev is None:
        return number
    prefix = "".join("_" + c if c.isupper() else c for c in enum_type.name).lstrip("_").upper() + "_"
    name = ev.name
    return (name[len(prefix):] if name.startswith(prefix) else name).lower()


def index_info(i: document_pb2.IndexInfo) -> Dict[str, Any]:
    """message_dict of an index, its fields as (field, 1 or -1) pairs and a TTL index's limit
    as expire_after_seconds (None for any other index): the forms create_index takes them in."""
    d = message_dict(i)
    d["fields"] = [(f.field, -1 if f.direction == common_pb2.SORT_DIRECTION_DESCENDING else 1)
                   for f in i.fields]
    del d["ttl"]
    d["expire_after_seconds"] = i.ttl.expire_after_seconds if i.HasField("ttl") else None
    return d
