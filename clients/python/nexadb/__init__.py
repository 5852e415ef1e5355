"""NexaDB Python client: documents and vectors over gRPC.

    from nexadb import NexaDB          # or, as the brief imports it: from nexadb_client import NexaDB
    db = NexaDB('localhost', 6970, api_key='...')
    users = db.collection('users')
    uid = users.insert({'name': 'Alice', 'age': 28})
    for u in users.find({'age': {'$gt': 25}}):
        print(u['name'])

For asyncio, AsyncNexaDB (nexadb.aio) has the same methods as coroutines:

    async with AsyncNexaDB('localhost', 6970, api_key='...') as db:
        uid = await db.collection('users').insert({'name': 'Alice', 'age': 28})

Port 6970 is the server's gRPC port (the default here); 6969 is its HTTP/JSON port.
"""
from .aio import AsyncChangeStream, AsyncCollection, AsyncCursor, AsyncNexaDB, AsyncVectorCollection
from .client import (DEFAULT_PORT, ChangeStream, Collection, Cursor, NexaDB, Results, SearchResult,
                     VectorCollection, VectorDocument)
from .errors import (AlreadyExistsError, AuthenticationError, DeadlineExceededError,
                     InvalidArgumentError, NexaDBError, NotFoundError, PermissionDeniedError,
                     ResourceExhaustedError, UnavailableError, UnimplementedError)

__version__ = "0.2.0"

__all__ = [
    "NexaDB", "Collection", "VectorCollection", "Cursor", "ChangeStream", "Results", "SearchResult", "VectorDocument",
    "AsyncNexaDB", "AsyncCollection", "AsyncVectorCollection", "AsyncCursor", "AsyncChangeStream",
    "DEFAULT_PORT",
    "NexaDBError", "InvalidArgumentError", "NotFoundError", "AlreadyExistsError",
    "AuthenticationError", "PermissionDeniedError", "ResourceExhaustedError",
    "UnavailableError", "UnimplementedError", "DeadlineExceededError",
]
