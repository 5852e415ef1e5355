"""Python values <-> nexadb.v1.Document, the wire form of documents, filters, updates,
sorts and pipeline stages: one BSON document (bsonspec.org), written and read by the bson
package that ships with pymongo.

Going out, a dict keeps its key order and its types: int (int32 when it fits, else int64;
beyond int64 is refused), float, str, bool, None, datetime (a naive one is taken as UTC;
milliseconds are kept), bytes (binary subtype 0; bson.Binary for another subtype), list,
tuple and nested dicts. Coming back: dict (order kept), int, float, str, bool, None,
datetime (timezone-aware, UTC), bytes, list.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, List, Mapping, Optional, Sequence

import bson
from bson.codec_options import CodecOptions

from .v1 import common_pb2

UTC = _dt.timezone.utc
_DECODE = CodecOptions(document_class=dict, tz_aware=True, tzinfo=UTC)


def to_document(d: Optional[Mapping[str, Any]], what: str = "document",
                required: bool = False) -> Optional[common_pb2.Document]:
    """d as a Document message; None stays None (the field is left unset) unless required."""
    if d is None:
        if required:
            raise TypeError(f"{what} is required")
        return None
    if not isinstance(d, Mapping):
        raise TypeError(f"{what} must be a dict, not {type(d).__name__}")
    try:
        return common_pb2.Document(bson=_encode_in_order(d))
    except OverflowError as e:
        raise ValueError(f"{what}: an integer outside 64 bits cannot be stored ({e})") from None
    except bson.errors.InvalidDocument as e:
        raise TypeError(f"{what}: {e}") from None


def _encode_in_order(d: Mapping[str, Any]) -> bytes:
    """BSON of d with its keys in d's order. bson.encode writes a top-level "_id" first
    (MongoDB's habit for stored documents), which would turn the sort {"k": 1, "_id": 1}
    into {"_id": 1, "k": 1}; nested documents keep their order, so d is encoded as the
    value of a one-key wrapper and cut out of it: 4 bytes of length, type 0x03, "s\\0",
    then d's document, then the wrapper's terminating 0."""
    wrapped = bson.encode({"s": d})
    return wrapped[7:-1]


def from_document(doc: common_pb2.Document) -> Dict[str, Any]:
    """A Document message as a dict ({} for an empty one)."""
    return bson.decode(doc.bson, codec_options=_DECODE) if doc.bson else {}


def floats(vec: Sequence[float], what: str = "vector") -> List[float]:
    """A list of floats from any sequence of numbers (list, tuple, numpy array...)."""
    try:
        return [float(x) for x in vec]
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} must be a sequence of numbers: {e}") from None
