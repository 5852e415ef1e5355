"""LangChain's own standard tests for vector stores (PyPI langchain-tests,
VectorStoreIntegrationTests, sync and async) against a real nexadb-server. Every test of the
suite runs; none is skipped (has_sync, has_async and has_get_by_ids are all True)."""
from typing import Generator

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_nexadb import NexaDBVectorStore


class TestNexaDBVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, connect, coll_name) -> Generator[VectorStore, None, None]:  # type: ignore
        store = NexaDBVectorStore(self.get_embeddings(), coll_name, **connect)
        try:
            yield store
        finally:
            store.delete_collection()
            store.close()
