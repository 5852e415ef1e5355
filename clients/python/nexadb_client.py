"""The brief's import path: `from nexadb_client import NexaDB` works as it did in v1."""
from nexadb import *  # noqa: F401,F403
from nexadb import __all__  # noqa: F401
