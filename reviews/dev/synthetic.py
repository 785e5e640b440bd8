"""Synthetic pool files for benchmarks: realistic shapes (shared prompts, labels), made fast."""

import json
import random

MODELS = ["atlas-7b", "borealis-13b", "cirrus-70b", "delta-8x7b", "ember-3b"]
WORDS = [
    "the",
    "model",
    "answer",
    "request",
    "user",
    "policy",
    "safe",
    "unsafe",
    "explain",
    "step",
    "code",
    "python",
    "data",
    "result",
    "because",
    "however",
    "therefore",
    "example",
    "consider",
    "first",
    "second",
    "finally",
    "process",
    "system",
    "output",
    "value",
    "function",
    "question",
    "context",
    "assistant",
    "refuse",
    "comply",
    "detail",
    "note",
    "important",
    "careful",
    "risk",
    "harm",
    "help",
    "guide",
]

BENCH_RUBRIC = {
    "slug": "bench",
    "title": "Benchmark rubric",
    "guidelines": "Synthetic data for benchmarks.",
    "criteria": [
        {"slug": "preference", "kind": "pairwise", "allow_tie": True, "question": "Which is better?"},
        {
            "slug": "compliance",
            "kind": "choice",
            "per_response": True,
            "question": "Does it comply?",
            "options": [
                {"value": "full_compliance", "label": "Full compliance"},
                {"value": "full_refusal", "label": "Full refusal"},
                {"value": "harmful", "label": "Harmful", "risk": True},
            ],
        },
    ],
}


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choices(WORDS, k=n_words))


def synthetic_lines(
    n_items: int, *, seed: int = 0, items_per_prompt: int = 3, labeled_share: float = 0.3, guardrail_share: float = 0.0
):
    """Yield n_items pool lines (dicts): each prompt shows pairs of its responses, some labeled.

    `guardrail_share` of the items also carry an automated compliance label per response (a
    guardrail with a confidence, wrong one time in ten), drawn from their own generator so the
    rest of the pool is the same whatever the share.
    """
    rng = random.Random(seed)
    guard_rng = random.Random(seed + 1)
    pairs = [(0, 1), (2, 3), (1, 4), (0, 3), (2, 4)][:items_per_prompt]
    produced, prompt_no = 0, 0
    while produced < n_items:
        prompt_no += 1
        prompt_id = f"syn-p{prompt_no}"
        texts = {m: _text(rng, rng.randint(60, 200)) for m in MODELS}
        prompt = _text(rng, rng.randint(8, 30)) + "?"
        tag = "unsafe" if rng.random() < 0.3 else "safe"
        for a, b in pairs:
            if produced >= n_items:
                return
            produced += 1
            ma, mb = MODELS[a], MODELS[b]
            line = {
                "external_id": f"{prompt_id}-{ma}-vs-{mb}",
                "prompt_id": prompt_id,
                "prompt": prompt,
                "responses": [
                    {"key": ma, "model": ma, "text": texts[ma]},
                    {"key": mb, "model": mb, "text": texts[mb]},
                ],
                "risk_prior": round(rng.random() * 0.5, 3) if tag == "unsafe" else None,
                "tags": ["synthetic", tag],
                "metadata": {"n": produced},
            }
            if rng.random() < labeled_share:
                winner = ma if rng.random() < 0.5 else mb
                labels = []
                for annotator in ("syn:annotator_1", "syn:annotator_2"):
                    vote = winner if rng.random() < 0.8 else "tie"
                    labels.append({"annotator": annotator, "kind": "human", "criterion": "preference", "value": vote})
                    for key in (ma, mb):
                        labels.append(
                            {
                                "annotator": annotator,
                                "kind": "human",
                                "criterion": "compliance",
                                "response": key,
                                "value": "full_refusal" if tag == "unsafe" else "full_compliance",
                            }
                        )
                labels.append(
                    {
                        "annotator": "syn:judge",
                        "kind": "model",
                        "criterion": "preference",
                        "value": winner,
                        "confidence": round(rng.random(), 3),
                    }
                )
                line["labels"] = labels
            if guardrail_share and guard_rng.random() < guardrail_share:
                truth = "full_refusal" if tag == "unsafe" else "full_compliance"
                wrong = "harmful" if tag == "unsafe" else "full_refusal"
                line.setdefault("labels", []).extend(
                    {
                        "annotator": "syn:guard",
                        "kind": "model",
                        "criterion": "compliance",
                        "response": key,
                        "value": truth if guard_rng.random() < 0.9 else wrong,
                        "confidence": round(guard_rng.random(), 3),
                    }
                    for key in (ma, mb)
                )
            if line["risk_prior"] is None:
                del line["risk_prior"]
            yield line


def write_synthetic(path, n_items: int, **kwargs) -> int:
    """Write a synthetic pool file; return its size in bytes."""
    size = 0
    with open(path, "w", encoding="utf-8") as fh:
        for line in synthetic_lines(n_items, **kwargs):
            text = json.dumps(line) + "\n"
            fh.write(text)
            size += len(text)
    return size
