"""Retrieval with LangChain over NexaDB, with real all-MiniLM-L6-v2 embeddings computed offline
(clients/examples/minilm.py). Connects to $NEXADB_URL (default grpc://localhost:6970) with
$NEXADB_API_KEY; rerunnable (it drops its collection first).

    clients/integrations/install.sh --with-minilm      # .cache/venv-integrations
    NEXADB_API_KEY=... .cache/venv-integrations/bin/python clients/langchain/examples/retrieval.py
"""
import os
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))  # minilm.py
from langchain_core.embeddings import Embeddings  # noqa: E402
from minilm import MiniLM  # noqa: E402

from langchain_nexadb import NexaDBVectorStore  # noqa: E402


class MiniLMEmbeddings(Embeddings):
    """LangChain's Embeddings interface over the offline all-MiniLM-L6-v2 (384 dimensions)."""

    def __init__(self):
        self.model = MiniLM()

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return self.model.encode(texts).tolist()

    def embed_query(self, text: str) -> List[float]:
        return self.model.encode(text).tolist()


TEXTS = [
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
    store = NexaDBVectorStore(MiniLMEmbeddings(), "langchain_retrieval_example",
                              url=os.environ.get("NEXADB_URL", "grpc://localhost:6970"),
                              api_key=key)
    store.delete_collection()
    store.add_texts([t for _, _, t in TEXTS], [{"topic": topic} for _, topic, _ in TEXTS],
                    ids=[i for i, _, _ in TEXTS])

    retriever = store.as_retriever(search_kwargs={"k": 2})
    for doc in retriever.invoke("How do computers learn from examples?"):
        print(f"retrieved {doc.id}: {doc.page_content}")
    for doc, score in store.similarity_search_with_score(
            "How do I make dinner?", k=2, filter={"topic": "cooking"}):
        print(f"cooking {doc.id}: cosine {score:.3f}")
    store.close()


if __name__ == "__main__":
    main()
