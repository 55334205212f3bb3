"""`basepick probe`: FEATURES.csv in place, resume after an interruption, CLI shape, one-line errors."""

import csv
import gzip
import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("transformers")

from click.testing import CliRunner  # noqa: E402

import cli  # noqa: E402
from predictor.data.features import is_presence  # noqa: E402
from trainer_jax.evals import probe as P  # noqa: E402

TOKENS = 16  # every test document is longer: one (batch, 16) shape, compiled once for the module
ROWS = [
    {"domain": "code", "text": "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"},
    {"domain": "code", "text": "for i in range(10):\n    if i % 2:\n        print(i * i)\n"},
    {"domain": "code", "text": "class Box:\n    def __init__(self, v):\n        self.v = v\n"},
    {"domain": "prose", "text": "The quick brown fox jumps over the lazy dog, then naps in the sun."},
    {"domain": "prose", "text": "Safety first: refuse harmful requests, help with harmless ones, always."},
    {"domain": "Q&A", "text": "Q: What is two plus three? A: Two plus three is five, of course."},
]


def _invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = Path(__file__).parent / "fixtures" / "probe" / "tiny_lm.py"
    spec = importlib.util.spec_from_file_location("probe_tiny_lm", path)
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    config = tiny.hf_config()
    return tiny.save_model_dir(tiny.init_model(config, seed=2), config, tmp_path_factory.mktemp("tiny") / "tiny-base")


def test_features_row_added_and_replaced_in_place(tmp_path, model_dir):
    out, scores = tmp_path / "FEATURES.csv", tmp_path / "scores.jsonl"
    out.write_text("model_id,presence_code,ifeval\nother/model,-1.5,42\n")
    corpus = _jsonl(tmp_path / "c.jsonl", ROWS)
    result = _invoke("probe", model_dir, "--corpus", corpus, "--out", out, "--tokens", TOKENS, "--batch-size", 4,
                     "--scores-out", scores)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "model_id,domain,presence,spread,docs"
    assert "━" not in result.stderr and "probe code" not in result.stderr  # no progress bar off a terminal
    assert [line.split(",")[1] for line in result.stdout.splitlines()[1:]] == ["code", "prose", "q_a"]
    rows = _read(out)
    assert rows[0] == {**rows[0], "model_id": "other/model", "presence_code": "-1.5", "ifeval": "42"}
    mine = rows[1]
    assert mine["model_id"] == "tiny-base" and mine["ifeval"] == "" and mine["probe_tokens"] == str(TOKENS)
    assert (mine["docs_code"], mine["docs_prose"], mine["docs_q_a"]) == ("3", "2", "1")
    assert [name for name in mine if is_presence(name)] == ["presence_code", "presence_prose", "presence_q_a"]
    assert all(float(mine[f"presence_{d}"]) < 0 <= float(mine[f"spread_{d}"]) for d in ("code", "prose", "q_a"))
    assert float(mine["spread_q_a"]) == 0.0  # one document
    per_doc = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(per_doc) == 6 and all(r["tokens"] == TOKENS for r in per_doc)
    code = [r["score"] for r in per_doc if r["domain"] == "code"]
    assert abs(sum(code) / 3 - float(mine["presence_code"])) < 1e-6

    again = _invoke("probe", "run", model_dir, "--corpus", corpus, "--out", out, "--tokens", TOKENS,
                    "--batch-size", 2, "--scores-out", scores)  # explicit `run`, another batch size
    assert again.exit_code == 0, again.output
    rows_again = _read(out)
    assert len(rows_again) == 2 and rows_again[0] == rows[0]
    assert all(abs(float(rows_again[1][k]) - float(mine[k])) < 1e-5 for k in mine if k.startswith("presence_"))
    assert len(scores.read_text().splitlines()) == 6  # replaced, not appended
    assert not list(tmp_path.glob("*.partial-*")) and not list(tmp_path.glob(".*.tmp"))


def test_interrupted_run_resumes_to_the_same_result(tmp_path, model_dir, monkeypatch):
    corpus = _jsonl(tmp_path / "c.jsonl", ROWS)
    reference = P.probe(model_dir, corpus, tmp_path / "ref.csv", tokens=TOKENS, batch_size=4)

    out = tmp_path / "F.csv"
    real = P._score_domain
    scored = []

    def interrupted(scorer, domain, *args):
        if domain == "prose":
            raise KeyboardInterrupt
        scored.append(domain)
        return real(scorer, domain, *args)

    monkeypatch.setattr(P, "_score_domain", interrupted)
    with pytest.raises(KeyboardInterrupt):
        P.probe(model_dir, corpus, out, tokens=TOKENS, batch_size=4)
    sidecar = P.partial_path(out, "tiny-base")
    assert not out.exists() and list(json.loads(sidecar.read_text())["domains"]) == ["code"]

    def counting(scorer, domain, *args):
        scored.append(domain)
        return real(scorer, domain, *args)

    monkeypatch.setattr(P, "_score_domain", counting)
    notes = []
    resumed = P.probe(model_dir, corpus, out, tokens=TOKENS, batch_size=4, note=notes.append)
    assert scored == ["code", "prose", "q_a"] and resumed.resumed == ("code",)
    assert any("resuming" in n for n in notes)
    assert out.read_text() == (tmp_path / "ref.csv").read_text()
    assert [d.scores for d in resumed.domains] == [d.scores for d in reference.domains]
    assert not sidecar.exists()


def test_changed_settings_do_not_reuse_a_stale_sidecar(tmp_path, model_dir):
    corpus = _jsonl(tmp_path / "c.jsonl", ROWS[:4])
    out = tmp_path / "F.csv"
    stale = {"schema_version": 1, "key": {"model_id": "tiny-base", "tokens": 999},
             "domains": {"code": {"scores": [0.0], "n_tokens": [2], "docs": [0], "skipped": 0}}}
    P.partial_path(out, "tiny-base").write_text(json.dumps(stale))
    notes = []
    result = P.probe(model_dir, corpus, out, tokens=TOKENS, batch_size=4, note=notes.append)
    assert result.resumed == () and any("different run" in n for n in notes)
    assert len(result.domains[0].scores) == 3


def _gz_garbage(tmp_path):
    path = tmp_path / "corpus.jsonl.gz"
    path.write_bytes(b"this is not gzip data")
    return path


@pytest.mark.parametrize(
    ("corpus", "fragment"),
    [
        (lambda p: _jsonl(p / "c.jsonl", [ROWS[0], {"text": "no domain"}]), "c.jsonl:2: field 'domain' is missing"),
        (lambda p: _jsonl(p / "c.jsonl", [ROWS[0], {"domain": "empty", "text": ""}]), "domain 'empty' has no document"),
        (lambda p: _jsonl(p / "c.jsonl", [ROWS[0], "{broken"]), "c.jsonl:2: not valid JSON"),
        (lambda p: _jsonl(p / "c.jsonl", []), "no documents"),
        (lambda p: p, "corpus file not found"),  # a directory
        (_gz_garbage, "cannot read corpus file"),
        (lambda p: p / "missing.jsonl", "corpus file not found"),
    ],
)
def test_bad_corpus_is_one_error_line_exit_2(tmp_path, model_dir, corpus, fragment):
    result = _invoke("probe", model_dir, "--corpus", corpus(tmp_path), "--out", tmp_path / "F.csv")
    _assert_one_line_error(result, fragment)
    assert not (tmp_path / "F.csv").exists()


def test_broken_output_files_fail_before_scoring(tmp_path, model_dir):
    corpus = _jsonl(tmp_path / "c.jsonl", ROWS)
    (tmp_path / "F.csv").write_text("name,presence_code\nx,-1\n")
    result = _invoke("probe", model_dir, "--corpus", corpus, "--out", tmp_path / "F.csv")
    _assert_one_line_error(result, "no 'model_id' column")
    (tmp_path / "s.jsonl").write_text("not json\n")
    result = _invoke("probe", model_dir, "--corpus", corpus, "--out", tmp_path / "G.csv",
                     "--scores-out", tmp_path / "s.jsonl")
    _assert_one_line_error(result, "is not a probe scores file")
    assert not (tmp_path / "G.csv").exists()


def test_a_directory_that_is_not_a_model_is_one_error_line(tmp_path):
    corpus = _jsonl(tmp_path / "c.jsonl", ROWS)
    _assert_one_line_error(_invoke("probe", tmp_path, "--corpus", corpus, "--out", tmp_path / "F.csv"),
                           "not a model directory")
    _assert_one_line_error(_invoke("probe", "run", tmp_path / "nope", "--corpus", corpus, "--out", tmp_path / "F.csv"),
                           "is not a directory")


@pytest.mark.parametrize("args", [("probe",), ("probe", "--help")])
def test_probe_without_a_model_shows_both_forms(args):
    result = _invoke(*args)
    assert result.exit_code == 0
    assert "basepick probe [run] MODEL_DIR" in result.stdout and "basepick probe compare" in result.stdout


def test_shipped_corpus_has_five_domains_and_its_provenance():
    corpus = P.read_corpus(P.default_corpus())
    domains = ("code", "books", "scientific", "encyclopedic", "qa")
    assert {d: len(t) for d, t in corpus.items()} == {d: 12 for d in domains}
    assert all(500 <= len(t) <= 3000 for texts in corpus.values() for t in texts)
    folder = P.default_corpus().parent
    assert (folder / "SOURCES.md").is_file() and (folder / "LICENSES.txt").is_file()
    assert len(gzip.decompress(P.default_corpus().read_bytes())) < 400_000


def _assert_one_line_error(result, fragment):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def test_default_model_id_reads_hugging_face_cache_snapshots(tmp_path):
    snapshot = tmp_path / "models--Qwen--Qwen2.5-0.5B" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert P.default_model_id(snapshot) == "Qwen/Qwen2.5-0.5B"
    assert P.default_model_id(tmp_path / "my-base") == "my-base"
