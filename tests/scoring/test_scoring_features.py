"""scoring.features: WordLlama's embedding, loaded from the installed wheel, never the network."""

import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from scoring import features


def test_semantic_vectors_place_paraphrases_closer_than_other_topics():
    texts = [
        "I cannot help with that request.",
        "Sorry, I can't assist with this.",
        "Here is a recipe: mix flour, eggs and milk, then bake for twenty minutes.",
    ]
    e = features.unit_rows(features.semantic(features.text_features(texts)))
    assert e[0] @ e[1] > e[0] @ e[2] + 0.1


def test_pooling_matches_wordllamas_own_embed():
    from pathlib import Path

    import wordllama
    from wordllama import WordLlama

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    texts = ["short one", "a somewhat longer text with several words in it " * 5]
    assert features.semantic_embeddings(texts) == pytest.approx(model.embed(texts), abs=1e-5)


def test_text_features_never_reach_the_network():
    # A fresh interpreter with every socket refused: loading and embedding must still work.
    script = textwrap.dedent(
        """
        import socket
        tried = []
        def refuse(*args, **kwargs):
            tried.append(args)
            raise OSError("network blocked by the test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from scoring import features
        v = features.text_features(["no network needed", ""])
        assert v.shape == (2, features.DIM) and abs(v[0]).sum() > 0
        assert not tried, tried
        print("ok")
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "0", "HOME": "/nonexistent"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=".", check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert socket.socket.connect is not None  # this process is untouched


def test_structure_statistics_count_what_they_say():
    text = "# Title\n\n- one\n- two\n1. three\n\n**bold** and ```code```"
    s = dict(zip(features.SCALARS, features.structure(text), strict=True))
    assert s["log_list_items"] == pytest.approx(np.log1p(3))
    assert s["log_headings"] == pytest.approx(np.log1p(1))
    assert s["log_bold"] == pytest.approx(np.log1p(2))
    assert s["log_code_fences"] == pytest.approx(np.log1p(2))
    assert s["log_lines"] == pytest.approx(np.log1p(7))
