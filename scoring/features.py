"""Fixed-size text features: hashed bags of words, so no vocabulary has to be stored or grown."""

import re

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

DIM = 256
# Bump when the feature definition changes: stored vectors of another version are recomputed.
VERSION = 1
# Enough text to characterize a response; hashing megabytes would only cost time.
MAX_CHARS = 20_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_VECTORIZER = HashingVectorizer(
    n_features=DIM - 2,
    ngram_range=(1, 2),
    alternate_sign=True,
    norm="l2",
    dtype=np.float32,
    token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - a regex, not a password
)


def clean_text(text: str) -> str:
    """Drop control and bidi/zero-width characters and cap the length."""
    return _CONTROL.sub(" ", text[:MAX_CHARS])


def text_features(texts: list[str]) -> np.ndarray:
    """(n, DIM) float32: hashed unigrams and bigrams (l2-normalized), log length, code fences.

    An empty text (after cleaning) gets a zero bag and zero length: it scores, it does not crash.
    """
    cleaned = [clean_text(t) for t in texts]
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    if not texts:
        return out
    out[:, : DIM - 2] = _VECTORIZER.transform(cleaned).toarray()
    out[:, DIM - 2] = np.log1p([len(t) for t in texts]) / 10.0
    out[:, DIM - 1] = np.minimum([t.count("```") / 2 for t in texts], 5) / 5.0
    return out


def to_bytes(vectors: np.ndarray) -> list[bytes]:
    """Rows as float16 bytes for storage (half the size; hashed features need no more precision)."""
    return [row.tobytes() for row in vectors.astype(np.float16)]


def from_bytes(blobs: list[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), DIM).astype(np.float32)


def item_embedding(prompt: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Unit-length item embeddings for diversity: prompt and both responses together."""
    e = prompt + a + b
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)


def risk_features(prompt: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The risk classifier's input: the prompt, and the two responses in either order."""
    return np.hstack([prompt, a + b, np.abs(a - b)])


def pair_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """φ(x, y_A) − φ(x, y_B) for the Bradley-Terry reward model (the prompt part cancels)."""
    return a - b
