"""Probe document scores: parity with transformers, padding invariance, and a real presence signal."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402

from trainer_jax.evals.probe import (  # noqa: E402
    default_corpus,
    make_scorer,
    probe,
    read_corpus,
    score_documents,
)

TOL = 1e-4  # acceptance: max abs difference of a document score (nats/token) in fp32


def _tiny():
    path = Path(__file__).parent / "fixtures" / "probe" / "tiny_lm.py"
    spec = importlib.util.spec_from_file_location("probe_tiny_lm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny = _tiny()


def _write_corpus(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_scores_match_transformers_with_padding_and_truncation(tmp_path):
    torch = pytest.importorskip("torch")
    mf = tiny.make_fixtures()
    model_dir = tmp_path / "llama"
    hf = mf.build_hf_model("llama", "causal", model_dir, seed=3)  # llama3 RoPE scaling, untied head
    texts = mf.CORPUS + ["x" * 3, "def f(x):\n    return x * 2\n" * 6]  # 2..~70 tokens: padding and truncation
    rows = [{"domain": "web" if i % 2 else "Code Docs", "text": t} for i, t in enumerate(texts)]
    tokens = 40
    corpus = _write_corpus(tmp_path / "c.jsonl", rows)
    result = probe(model_dir, corpus, tmp_path / "F.csv", tokens=tokens, batch_size=3)

    tok = mf.train_tokenizer()
    worst = 0.0
    by_domain = {d.domain: d for d in result.domains}
    assert set(by_domain) == {"web", "code_docs"}
    for domain, name in (("code_docs", "Code Docs"), ("web", "web")):
        domain_texts = [r["text"] for r in rows if r["domain"] == name]
        for doc, score in zip(by_domain[domain].docs, by_domain[domain].scores):
            ids = tok(domain_texts[doc])["input_ids"][:tokens]
            with torch.no_grad():
                logp = torch.log_softmax(hf(torch.tensor([ids])).logits[0].double(), dim=-1)  # (n, V)
            ref = logp[:-1].gather(1, torch.tensor(ids[1:])[:, None]).mean().item()  # positions 2..n
            worst = max(worst, abs(score - ref))
    print(f"max |score - transformers| = {worst:.2e} nats/token")
    assert worst <= TOL, worst
    assert max(n for d in result.domains for n in d.n_tokens) == tokens  # the long document was cut to N


def test_padding_never_changes_a_score():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    model = tiny.init_model(tiny.hf_config(), seed=1)
    scorer = make_scorer(model)
    vocab = tiny.hf_config()["vocab_size"]

    def alone(doc):  # (1, n): no padding at all
        s, c = scorer(np.asarray([doc], np.int32), np.ones((1, len(doc)), np.int32))
        return float(s[0]) / float(c[0])

    # Few distinct shapes (each compiles once): lengths from a small set, 3 documents, batches of 16 or 32.
    doc = st.sampled_from([2, 5, 11, 16]).flatmap(lambda n: st.lists(st.integers(3, vocab - 1), min_size=n, max_size=n))

    @hypothesis.settings(max_examples=6, deadline=None, derandomize=True)
    @hypothesis.given(docs=st.lists(doc, min_size=3, max_size=3), t=st.sampled_from([16, 32]), left=st.booleans())
    def check(docs, t, left):
        reference = [alone(d) for d in docs]
        batched = score_documents(scorer, docs, batch_size=3)  # right padding, length-sorted batches
        assert np.max(np.abs(batched - reference)) < 1e-5
        ids, mask = np.zeros((len(docs), t), np.int32), np.zeros((len(docs), t), np.int32)
        for i, d in enumerate(docs):
            sl = slice(t - len(d), t) if left else slice(0, len(d))
            ids[i, sl], mask[i, sl] = d, 1
        s, c = scorer(ids, mask)
        assert np.max(np.abs(np.asarray(s) / np.asarray(c) - reference)) < 1e-5

    check()


def test_lm_trained_on_domain_a_shows_higher_presence_on_held_out_a(tmp_path):
    corpus = read_corpus(default_corpus())
    a_docs, b_docs = corpus["code"], corpus["books"]  # A: Python source; B: book prose
    tok = tiny.make_fixtures().train_tokenizer()
    n = 64  # tokens per document
    train = [tok(t)["input_ids"][j : j + n] for t in a_docs[:8] for j in range(0, 4 * n, n)]  # 32 windows of A
    config = tiny.hf_config()
    untrained = tiny.init_model(config, seed=0)
    trained = tiny.train_lm(tiny.init_model(config, seed=0), train, steps=60, seed=0, lr=1e-2)
    held_out = [{"domain": "a", "text": t} for t in a_docs[8:]] + [{"domain": "b", "text": t} for t in b_docs[8:]]
    corpus_path = _write_corpus(tmp_path / "held_out.jsonl", held_out)
    features = {}
    for name, model in (("untrained", untrained), ("trained", trained)):
        model_dir = tiny.save_model_dir(model, config, tmp_path / name, tok)
        result = probe(model_dir, corpus_path, tmp_path / "F.csv", tokens=n, batch_size=4)
        features[name] = {d.domain: d for d in result.domains}
    trained_gap = features["trained"]["a"].presence - features["trained"]["b"].presence  # nats/token
    untrained_gap = features["untrained"]["a"].presence - features["untrained"]["b"].presence
    print(f"presence gap A - B: trained {trained_gap:.3f}, untrained {untrained_gap:.3f} nats/token")
    assert trained_gap > 0.3 and trained_gap > untrained_gap + 0.3
    assert features["trained"]["a"].presence > features["untrained"]["a"].presence + 1.0  # it learned A
    assert max(features["trained"]["a"].scores) < 0 and max(features["trained"]["b"].scores) < 0
