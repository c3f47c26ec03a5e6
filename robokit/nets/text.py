"""Text instructions -> task vectors, through a pluggable embedding function.

A task instruction ("open the drawer") conditions a policy through a vector part of a dict
observation. :func:`make_text_embedder` returns a callable ``texts (B strings) -> (B, D)
float32``:

- ``"sentence-transformers:<model>"``: a local sentence-embedding model (for example
  ``all-MiniLM-L6-v2``, 384 dims) when the ``sentence-transformers`` package and the model's
  files are installed; it is never downloaded here (``local_files_only``).
- ``"hash"`` (the fallback, and the default): feature hashing of the lower-cased words
  (Weinberger et al. 2009, "Feature hashing for large scale multitask learning"): each word
  adds +-1 to one of D buckets chosen by a BLAKE2b hash of the word (the sign from another
  hash bit), and the vector is L2-normalised. Deterministic across runs, processes and
  machines (no Python ``hash`` randomisation); instructions sharing words get similar vectors;
  no semantics beyond word overlap.
- ``"auto"``: sentence-transformers' ``all-MiniLM-L6-v2`` where it loads, else ``hash``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

#: default size of hashed instruction vectors
HASH_DIM = 64
DEFAULT_SENTENCE_MODEL = "all-MiniLM-L6-v2"
TextEmbedder = Callable[[Sequence[str]], np.ndarray]


def hash_embed(texts: Sequence[str], dim: int = HASH_DIM) -> np.ndarray:
    """Feature-hashed bag of words: B strings -> (B, dim) float32, rows of unit norm (zeros
    for a text without words)."""
    out = np.zeros((len(texts), int(dim)), np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", str(text).lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            out[row, value % dim] += 1.0 if (value >> 63) & 1 else -1.0
        norm = float(np.linalg.norm(out[row]))
        if norm > 0:
            out[row] /= norm
    return out


def sentence_transformer_embedder(model: str = DEFAULT_SENTENCE_MODEL) -> TextEmbedder:
    """A local sentence-transformers model as an embedder (raises ImportError/OSError when the
    package or the model's files are missing; nothing is downloaded)."""
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(model, local_files_only=True)

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(encoder.encode(list(texts), normalize_embeddings=True), np.float32)

    return embed


def make_text_embedder(name: str = "hash", dim: int = HASH_DIM) -> TextEmbedder:
    """The embedder called ``name`` (see the module docstring); ``dim`` sizes ``"hash"``."""
    if name == "hash":
        return lambda texts: hash_embed(texts, dim)
    if name.startswith("sentence-transformers:"):
        return sentence_transformer_embedder(name.split(":", 1)[1])
    if name == "auto":
        try:
            return sentence_transformer_embedder()
        except (ImportError, OSError):
            return lambda texts: hash_embed(texts, dim)
    raise ValueError(f"unknown text embedder '{name}' (hash, auto, sentence-transformers:<model>)")
