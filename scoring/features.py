"""Fixed-size text features: a semantic embedding plus a few structure statistics per text.

The semantic part is WordLlama's static 256-d token embedding (`l2_supercat`), shipped inside
the `wordllama` wheel: the texts are tokenized, and each text's vector is the mean of its
tokens' embeddings. Nothing is downloaded, ever: the weights and the tokenizer are read from
the installed package (`tests/test_scoring_features.py` runs it with sockets blocked).
"""

import functools
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

SEMANTIC = 256
SCALARS = ("log_chars", "log_lines", "log_list_items", "log_code_fences", "log_headings", "log_bold", "log_words")
DIM = SEMANTIC + len(SCALARS)
# Bump when the feature definition changes: stored vectors of another version are recomputed.
VERSION = 2
# Enough text to characterize a response; tokenizing megabytes would only cost time.
MAX_CHARS = 20_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s", re.MULTILINE)
_HEADING = re.compile(r"^\s*#{1,6}\s", re.MULTILINE)
_WORD = re.compile(r"\w+")


def clean_text(text: str) -> str:
    """Drop control and bidi/zero-width characters and cap the length."""
    return _CONTROL.sub(" ", text[:MAX_CHARS])


@functools.cache
def _wordllama():
    """The embedding matrix (vocabulary × 256, float32) and tokenizer, loaded once per process.

    `cache_dir` points at the package itself: WordLlama looks for its tokenizer under
    `<cache_dir>/tokenizers/`, which is where the wheel puts it (its own default path is wrong
    and would fall back to the network); `disable_download` makes a missing file an error.
    """
    import wordllama
    from wordllama import WordLlama

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    tokenizer = model.tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return model.embedding.astype(np.float32), tokenizer


def semantic_embeddings(texts: list[str]) -> np.ndarray:
    """(n, 256) float32: the mean token embedding of each (cleaned) text; zeros for an empty one."""
    out = np.zeros((len(texts), SEMANTIC), dtype=np.float32)
    if not texts:
        return out
    matrix, tokenizer = _wordllama()
    encoded = tokenizer.encode_batch(texts, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encoded), dtype=np.int64, count=len(encoded))
    ids = np.fromiter((i for e in encoded for i in e.ids), dtype=np.int64, count=int(lengths.sum()))
    np.clip(ids, 0, len(matrix) - 1, out=ids)
    # Mean pooling as a sparse (texts × vocabulary) count matrix times the embedding matrix:
    # no (texts × tokens × 256) intermediate, so a long text costs what its tokens cost.
    counts = sp.csr_matrix(
        (np.ones(len(ids), dtype=np.float32), ids, np.concatenate([[0], np.cumsum(lengths)])),
        shape=(len(texts), len(matrix)),
    )
    out[:] = counts @ matrix
    out /= np.maximum(lengths, 1)[:, None]
    return out


def structure(text: str, full: str | None = None) -> list[float]:
    """log(1 + count) of characters, lines, list items, code fences, headings, bold marks and words
    of the cleaned `text`; characters and lines of the `full` text when given (a 1 MB response is long)."""
    full = text if full is None else full
    return [
        float(np.log1p(len(full))),
        float(np.log1p(full.count("\n") + 1 if full.strip() else 0)),
        float(np.log1p(len(_LIST_ITEM.findall(text)))),
        float(np.log1p(text.count("```"))),
        float(np.log1p(len(_HEADING.findall(text)))),
        float(np.log1p(text.count("**"))),
        float(np.log1p(len(_WORD.findall(text)))),
    ]


def text_features(texts: list[str]) -> np.ndarray:
    """(n, DIM) float32: the semantic embedding, then the structure statistics of SCALARS.

    Texts are cleaned and capped at MAX_CHARS first (their length is counted in full); an empty
    text gets zeros: it scores, it does not crash.
    """
    cleaned = [clean_text(t) for t in texts]
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    if not texts:
        return out
    # Whitespace alone (say, once control characters are dropped) has no meaning to embed.
    meaningful = [i for i, t in enumerate(cleaned) if t.strip()]
    out[meaningful, :SEMANTIC] = semantic_embeddings([cleaned[i] for i in meaningful])
    out[:, SEMANTIC:] = np.array([structure(c, t) for c, t in zip(cleaned, texts, strict=True)], dtype=np.float32)
    return out


def semantic(vectors: np.ndarray) -> np.ndarray:
    return vectors[:, :SEMANTIC]


def scalars(vectors: np.ndarray) -> np.ndarray:
    return vectors[:, SEMANTIC:]


def to_bytes(vectors: np.ndarray) -> list[bytes]:
    """Rows as float16 bytes for storage (half the size; the models need no more precision)."""
    return [row.tobytes() for row in vectors.astype(np.float16)]


def from_bytes(blobs: list[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), DIM).astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
