"""LlamaIndex integration for NexaDB: NexaDBVectorStore, a vector store on a NexaDB vector
collection, and to_nexadb_filter (MetadataFilters -> NexaDB's filter language)."""
from llama_index.vector_stores.nexadb.base import NexaDBVectorStore, to_nexadb_filter

__all__ = ["NexaDBVectorStore", "to_nexadb_filter"]
