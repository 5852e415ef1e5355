"""What ChangeStream (client.py) and AsyncChangeStream (aio.py) share: the events of the
message being read, the resume token, and when a failed stream may be resumed.

A Watch stream's messages carry events, each with its token, and resume_token, the stream's
position after the message (past events a pipeline dropped, too); a message without events
is the server's heartbeat, sent after 5 s of silence. The token handed back to callers is the
last event's while more events of the message are pending, else the message's resume_token,
so resuming from it delivers exactly what was not yet handed out.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Deque, Optional, Tuple

import grpc

from . import errors
from ._calls import Stream
from ._convert import from_document
from ._results import Document


class BaseChangeStream:
    """make(resume_after) builds the Watch request starting after a token (None: from the
    next change). resume_token is the position to resume from (None until the first message
    when no resume_after was given)."""

    def __init__(self, db: Any, make: Callable[[Optional[str]], Stream], resume_after: Optional[str]):
        self._db = db
        self._make = make
        self.resume_token: Optional[str] = resume_after or None
        self._events: Deque[Tuple[str, Any]] = deque()
        self._page_token: Optional[str] = None
        self._call: Any = None
        self._closed = False
        self._resumed = False  # reconnected, and the new stream has not answered yet

    def _request(self) -> Stream:
        return self._make(self.resume_token)

    def _take(self, msg: Any) -> None:
        """Takes one message in: its events to hand out, and where the stream stands after them."""
        self._resumed = False
        self._events.extend((e.token, e.event) for e in msg.events)
        if self._events:
            self._page_token = msg.resume_token or None
        elif msg.resume_token:
            self.resume_token = msg.resume_token

    def _pop(self) -> Document:
        token, event = self._events.popleft()
        self.resume_token = token if self._events else (self._page_token or token)
        return from_document(event)

    def _may_resume(self, e: grpc.RpcError) -> bool:
        """True when e is a dropped connection (UNAVAILABLE) worth one reconnection: not after
        close(), and not when the reconnection just made failed before any answer."""
        if self._closed or self._resumed:
            return False
        if errors.code_of(e) != grpc.StatusCode.UNAVAILABLE:
            return False
        self._resumed = True
        return True

    def _deadline(self) -> Optional[float]:
        """When a reconnection gives up: the client's timeout from now (None: never)."""
        t = self._db.timeout
        return time.monotonic() + t if t else None

    @staticmethod
    def _remaining(deadline: Optional[float]) -> Optional[float]:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def _may_retry(self, e: grpc.RpcError, deadline: Optional[float]) -> bool:
        """A reconnection's attempt that failed with UNAVAILABLE is made again while time
        remains: a connection that still looked ready right after the server died fails the
        first attempt."""
        return (not self._closed and errors.code_of(e) == grpc.StatusCode.UNAVAILABLE
                and (deadline is None or time.monotonic() < deadline))

    def _mark_closed(self) -> None:
        self._closed = True
        self._events.clear()
        if self._call is not None:
            self._call.cancel()
