"""Retrieval with LlamaIndex over NexaDB, with real all-MiniLM-L6-v2 embeddings computed
offline (clients/examples/minilm.py). Connects to $NEXADB_URL (default grpc://localhost:6970)
with $NEXADB_API_KEY; rerunnable (it clears its collection first).

    clients/integrations/install.sh --with-minilm      # .cache/venv-integrations
    NEXADB_API_KEY=... .cache/venv-integrations/bin/python clients/llamaindex/examples/retrieval.py
"""
import os
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))  # minilm.py
from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.bridge.pydantic import PrivateAttr  # noqa: E402
from llama_index.core.vector_stores import MetadataFilter, MetadataFilters  # noqa: E402
from minilm import MiniLM  # noqa: E402

from llama_index.vector_stores.nexadb import NexaDBVectorStore  # noqa: E402


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex's embedding interface over the offline all-MiniLM-L6-v2 (384 dimensions)."""

    _model: MiniLM = PrivateAttr()

    def __init__(self):
        super().__init__(model_name="all-MiniLM-L6-v2")
        self._model = MiniLM()

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._model.encode(text).tolist()

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._model.encode(texts).tolist()

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._model.encode(query).tolist()

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._get_query_embedding(query)


DOCS = [
    ("ml", "science", "Machine learning models require large datasets to learn patterns."),
    ("bread", "cooking", "Knead the dough for ten minutes, then let it rise for an hour."),
    ("db", "science", "A vector database finds the stored embeddings closest to a query."),
    ("pasta", "cooking", "Boil the pasta in salted water until it is al dente."),
    ("stars", "science", "Stars fuse hydrogen into helium in their cores."),
]


def main() -> None:
    key = os.environ.get("NEXADB_API_KEY")
    if not key:
        sys.exit("set NEXADB_API_KEY to a key of your server (its data dir's api_key file)")
    store = NexaDBVectorStore("llamaindex_retrieval_example",
                              os.environ.get("NEXADB_URL", "grpc://localhost:6970"), key)
    store.clear()
    embed = MiniLMEmbedding()
    index = VectorStoreIndex.from_documents(
        [Document(text=t, id_=i, metadata={"topic": topic}) for i, topic, t in DOCS],
        storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed)

    for hit in index.as_retriever(similarity_top_k=2).retrieve("How do computers learn from examples?"):
        print(f"retrieved {hit.node.ref_doc_id}: {hit.node.get_content()}")
    cooking = MetadataFilters(filters=[MetadataFilter(key="topic", value="cooking")])
    for hit in index.as_retriever(similarity_top_k=2, filters=cooking).retrieve("How do I make dinner?"):
        print(f"cooking {hit.node.ref_doc_id}: cosine {hit.score:.3f}")
    store.close()


if __name__ == "__main__":
    main()
