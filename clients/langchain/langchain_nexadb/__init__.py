"""LangChain integration for NexaDB: NexaDBVectorStore, a VectorStore on a NexaDB vector
collection (langchain_nexadb.vectorstores)."""
from .vectorstores import NexaDBVectorStore, relevance_score

__version__ = "0.1.0"
__all__ = ["NexaDBVectorStore", "relevance_score"]
