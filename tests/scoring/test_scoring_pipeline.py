"""scoring.pipeline: features of a pair, automated labels in r and h, the trained state."""

import numpy as np
import pytest

from scoring import evidence, features, pipeline

HARM = pipeline.Criterion("harm", ("no", "yes"), True, frozenset({"yes"}))
LAYOUT = pipeline.Layout([HARM])
TEXTS = ["How do I bake bread?", "Mix flour and water, knead, bake.", "I cannot help with that.", "Knead then bake."]


def block(n=2, slot_labels=(), pair_labels=(), final=None, votes=None, tags=None, swap=False):
    """n items showing the same prompt; item i has responses 2i and 2i+1 (targets 2i, 2i+1 for harm)."""
    f = features.text_features(TEXTS)
    a = np.vstack([f[1 + (i % 3)] for i in range(n)])
    b = np.vstack([f[1 + ((i + 1) % 3)] for i in range(n)])
    slot_target = np.array([[2 * i, 2 * i + 1] for i in range(n)])
    if swap:
        a, b = b, a
        slot_target = slot_target[:, ::-1].copy()
    return pipeline.Block(
        prompt=np.vstack([f[0]] * n),
        a=a,
        b=b,
        tags=tags or [["t1"]] * n,
        risk_prior=np.zeros(n),
        pair_votes=np.zeros((n, 2)),
        target_criterion=np.ones(2 * n, dtype=np.int64),
        target_votes=np.zeros((2 * n, 2)) if votes is None else votes,
        target_final=np.full(2 * n, -1) if final is None else final,
        slot_target=slot_target,
        slot_labels=evidence.Labels.of(slot_labels),
        pair_labels=evidence.Labels.of(pair_labels),
        risk_mask=LAYOUT.risk_mask(n),
    )


def fitted(blk):
    conf = evidence.fit(LAYOUT.n_values, blk.slot_labels, blk.target_criterion, blk.target_final)
    basis = pipeline.fit_basis(np.vstack([blk.prompt, blk.a, blk.b]), blk.tags, np.random.default_rng(0))
    return basis, conf


def untrained(basis, conf, informative=(True, True), mode="entropy"):
    feats = pipeline.featurize(basis, conf, LAYOUT, block())
    t = pipeline.train(
        basis,
        conf,
        LAYOUT,
        feats,
        np.zeros(0, dtype=np.int64),
        np.zeros(0),
        np.zeros(0, dtype=np.int64),
        np.zeros(0),
        np.random.default_rng(0),
        uncertainty=mode,
        informative=np.array(informative),
    )
    return t


def test_pair_features_are_antisymmetric_and_the_rest_symmetric():
    labs = [(0, 1, 7, 1, None), (3, 1, 7, 0, None)]
    blk = block(slot_labels=labs, pair_labels=[(0, 0, 9, 0, 0.8)])
    basis, conf = fitted(blk)
    f = pipeline.featurize(basis, conf, LAYOUT, blk)
    # The same items with A and B swapped (and the judge's label with them).
    swapped = block(slot_labels=labs, pair_labels=[(0, 0, 9, 1, 0.8)], swap=True)
    g = pipeline.featurize(basis, conf, LAYOUT, swapped)
    assert g.pair_x == pytest.approx(-f.pair_x, abs=1e-6)
    assert g.sym_x == pytest.approx(f.sym_x, abs=1e-6)
    assert g.risk_x == pytest.approx(f.risk_x, abs=1e-6)
    assert g.r_auto == pytest.approx(f.r_auto)
    assert set(f.pair_blocks) == {"length", "structure", "evidence", "semantic", "interaction"}
    assert sum(m.sum() for m in f.pair_blocks.values()) == f.pair_x.shape[1]


def test_an_automated_risk_label_raises_r_before_any_model_is_trained():
    blk = block(slot_labels=[(0, 1, 7, 1, None)])  # a guardrail says "harm: yes" of item 0's response A
    basis, conf = fitted(blk)
    feats = pipeline.featurize(basis, conf, LAYOUT, blk)
    trained = untrained(basis, conf)
    assert not trained.risk.trained
    s = pipeline.score(trained, LAYOUT, blk, feats)
    assert s.r[0] > 0.5 and s.r[1] == 0.0


def test_disagreeing_automated_labels_raise_h_and_a_final_answer_removes_it():
    agree = [(0, 1, 7, 0, None), (0, 1, 8, 0, None), (1, 1, 7, 0, None), (1, 1, 8, 0, None)]
    split = [(2, 1, 7, 0, None), (2, 1, 8, 1, None), (3, 1, 7, 0, None), (3, 1, 8, 1, None)]
    blk = block(slot_labels=agree + split)
    basis, conf = fitted(blk)
    trained = untrained(basis, conf)
    feats = pipeline.featurize(basis, conf, LAYOUT, blk)
    s = pipeline.score(trained, LAYOUT, blk, feats)
    # The pair term is 1 for both (no reward model), so compare the choice slots' part of h.
    assert s.h_keep[0] > s.h_keep[1]  # item 1's labels disagree: more is left to learn
    final = np.array([-1, -1, 0, 0])
    decided = block(slot_labels=agree + split, final=final)
    s2 = pipeline.score(trained, LAYOUT, decided, pipeline.featurize(basis, conf, LAYOUT, decided))
    assert s2.h_keep[1] == pytest.approx(1.0) and s2.slot_answer[1].tolist() == [0, 0]


def test_h_combines_its_parts_as_a_noisy_or_once_something_predicts_the_pair():
    blk = block(slot_labels=[(0, 1, 7, 0, 0.2)], pair_labels=[(0, 0, 9, 0, 0.9)])
    basis, conf = fitted(blk)
    feats = pipeline.featurize(basis, conf, LAYOUT, blk)
    trained = untrained(basis, conf)
    s = pipeline.score(trained, LAYOUT, blk, feats)
    # Item 0 has a judge's label: its pair term counts. Item 1 has none and no reward model is
    # trained: a pair entropy of 1 for every such item would rank nothing, so only its slots count.
    h_pair = s.q[0] * float(-(s.p[0] * np.log2(s.p[0]) + (1 - s.p[0]) * np.log2(1 - s.p[0])))
    assert s.p[0] > 0.5 and s.h[0] == pytest.approx(1 - (1 - h_pair) * s.h_keep[0])
    assert s.h[1] == pytest.approx(1 - s.h_keep[1])
    ignored = untrained(basis, conf, informative=(False, False))
    only_pair = pipeline.score(ignored, LAYOUT, blk, feats)
    assert only_pair.h_keep.tolist() == [1.0, 1.0] and only_pair.h[1] == pytest.approx(1.0)


def test_the_trained_state_round_trips_and_scores_the_same():
    rng = np.random.default_rng(0)
    n = 60
    f = features.text_features([f"text number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(2 * n + 1)])
    blk = pipeline.Block(
        prompt=np.vstack([f[0]] * n),
        a=f[1 : n + 1],
        b=f[n + 1 :],
        tags=[["x"] if i % 3 else [] for i in range(n)],
        risk_prior=np.zeros(n),
        pair_votes=np.zeros((n, 2)),
        target_criterion=np.ones(2 * n, dtype=np.int64),
        target_votes=np.zeros((2 * n, 2)),
        target_final=np.full(2 * n, -1),
        slot_target=np.arange(2 * n).reshape(n, 2),
        slot_labels=evidence.Labels.empty(),
        pair_labels=evidence.Labels.empty(),
        risk_mask=LAYOUT.risk_mask(n),
    )
    basis, conf = fitted(blk)
    feats = pipeline.featurize(basis, conf, LAYOUT, blk)
    outcome = (rng.random(n) < 0.5).astype(float)
    outcome[:10] = 0.5
    risk_y = (np.arange(n) % 4 == 0).astype(int)
    for mode in pipeline.UNCERTAINTY_MODES:
        trained = pipeline.train(
            basis,
            conf,
            LAYOUT,
            feats,
            np.arange(n),
            risk_y,
            np.arange(n),
            outcome,
            np.random.default_rng(1),
            uncertainty=mode,
            informative=np.array([True, True]),
        )
        assert trained.reward.trained and trained.risk.trained and trained.tie.trained
        back = pipeline.Trained.from_bytes(trained.to_bytes())
        a, b = pipeline.score(trained, LAYOUT, blk, feats), pipeline.score(back, LAYOUT, blk, feats)
        assert a.r == pytest.approx(b.r) and a.h == pytest.approx(b.h) and a.p == pytest.approx(b.p)
        assert back.describe() == trained.describe()


def _train_pairs(basis, conf, feats, rows, outcome):
    return pipeline.train(
        basis,
        conf,
        LAYOUT,
        feats,
        np.zeros(0, dtype=np.int64),
        np.zeros(0),
        rows,
        outcome,
        np.random.default_rng(0),
        informative=np.array([False, False]),
    )


def test_the_reward_model_says_nothing_about_a_tag_it_has_no_pairs_of():
    # 30 unsafe items, then 30 safe ones; the longer response wins on the unsafe ones.
    n = 60
    blk = block(n=n, tags=[["unsafe"]] * 30 + [["safe"]] * 30)
    basis, conf = fitted(blk)
    feats = pipeline.featurize(basis, conf, LAYOUT, blk)
    a_longer = (features.scalars(blk.a)[:, 0] > features.scalars(blk.b)[:, 0]).astype(float)
    unsafe_only = _train_pairs(basis, conf, feats, np.arange(30), a_longer[:30])
    assert unsafe_only.reward.trained
    assert unsafe_only.reward.info["group_pairs"] == {"unsafe": 30, "safe": 0, "(no tag)": 0}
    s = pipeline.score(unsafe_only, LAYOUT, blk, feats)
    assert ((s.p[:30] > 0.5) == (a_longer[:30] == 1)).all()
    # Nothing was learned about safe prompts: no judge either, so p = 0.5 and h is at its maximum.
    assert (s.p[30:] == 0.5).all() and unsafe_only.reward_covers(feats).tolist() == [True] * 30 + [False] * 30
    assert s.h[30:] == pytest.approx(s.q[30:]) and (s.h[30:] > s.h[:30]).all()
    # One decided safe pair is enough for the model to speak there.
    rows = np.arange(31)
    both = _train_pairs(basis, conf, feats, rows, a_longer[rows])
    assert both.reward_covers(feats).all() and (pipeline.score(both, LAYOUT, blk, feats).p[30:] != 0.5).all()


def test_the_reward_model_weighs_its_pairs_to_the_pools_tag_shares():
    # The pool is half safe, half unsafe; the training pairs are 24 unsafe and 6 safe.
    n = 60
    blk = block(n=n, tags=[["unsafe"]] * 30 + [["safe"]] * 30)
    basis, conf = fitted(blk)
    assert basis.strata_share.tolist() == [0.5, 0.5]
    feats = pipeline.featurize(basis, conf, LAYOUT, blk)
    rows = np.concatenate([np.arange(24), np.arange(30, 36)])
    trained = _train_pairs(basis, conf, feats, rows, (np.arange(30) % 2).astype(float))
    # Unsafe pairs: 0.5 / 0.8 of the pool's share; safe ones 0.5 / 0.2, scaled to mean 1.
    low, high = 0.625 / 1.0, 2.5 / 1.0
    assert trained.reward.info["pair_weights"] == [pytest.approx(low, abs=1e-3), pytest.approx(high, abs=1e-3)]
    back = pipeline.Trained.from_bytes(trained.to_bytes())
    assert back.basis.strata.tolist() == basis.strata.tolist()
    assert back.reward_groups.tolist() == trained.reward_groups.tolist()


def test_the_basis_keeps_partial_tags_only_and_embeddings_see_them():
    blk = block(n=3, tags=[["all", "safe"], ["all", "unsafe"], ["all", "safe"]])
    basis, conf = fitted(blk)
    assert basis.tags == ["safe", "unsafe"]  # "all" is on every item: it tells nothing apart
    feats = pipeline.featurize(basis, conf, LAYOUT, blk)
    assert feats.embedding.shape == (3, pipeline.EMBEDDING_DIM)
    e = feats.embedding
    # Items 0 and 2 share their tags; item 1 (other tag) is farther from item 0 than item 2's
    # text distance alone would make it.
    assert e[0] @ e[2] > e[0] @ e[1]
