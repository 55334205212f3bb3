"""The data sets users have, in the files they come in: every schema in every file format.

Rows use the exact column names and types of the data sets' cards (HelpSteer2, HelpSteer2-Preference,
RewardBench v1 "filtered", RewardBench 2, Anthropic HH-RLHF, TRL preference data). Each is written as
JSONL, JSONL.gz, a JSON list, Parquet (several row groups) and a ``datasets.save_to_disk`` folder, and
must read to the same examples; bad files are one line naming the file, row and column.
"""

import gzip
import json
import sys
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.ipc  # noqa: E402, F401  (loads pa.ipc)
import pyarrow.parquet as pq  # noqa: E402

from predictor.errors import DataError  # noqa: E402
from trainer_jax.data import readers  # noqa: E402
from trainer_jax.data.schemas import PreferenceExample, ScoreItem, read_examples  # noqa: E402

MULTI_TURN = "What is 2+2?<extra_id_1>Assistant\nFour.<extra_id_1>User\nAnd 3+3?"
HELPSTEER2 = [  # nvidia/HelpSteer2: prompt, response, five int attributes 0-4
    {"prompt": "Write a haiku.", "response": "Leaves fall", "helpfulness": 3, "correctness": 4, "coherence": 4,
     "complexity": 1, "verbosity": 1},
    {"prompt": MULTI_TURN, "response": "Six.", "helpfulness": 4, "correctness": 4, "coherence": 4, "complexity": 0,
     "verbosity": 0},
]
HELPSTEER2_PREFERENCE = [  # nvidia/HelpSteer2 preference/preference.jsonl.gz; strength < 0: response_1 is better
    {"split": "train", "prompt": "Say hi.", "response_1": "Hi!", "response_2": "Go away.", "preference_strength": -2,
     "preference_statement": "@Response 1 is better.", "preference_elaboration": "It greets."},
    {"split": "train", "prompt": MULTI_TURN, "response_1": "Five.", "response_2": "Six.", "preference_strength": 3,
     "preference_statement": "@Response 2 is much better.", "preference_elaboration": "Correct."},
    {"split": "train", "prompt": "Pick one.", "response_1": "A", "response_2": "B", "preference_strength": 0,
     "preference_statement": "Equal.", "preference_elaboration": "Same."},
    {"split": "val", "prompt": "Say bye.", "response_1": "Bye.", "response_2": "No.", "preference_strength": -1,
     "preference_statement": "@Response 1 is slightly better.", "preference_elaboration": "Polite."},
]
REWARDBENCH = [  # allenai/reward-bench, split "filtered"
    {"prompt": "How do I add?", "chosen": "Use +.", "chosen_model": "gpt-4", "rejected": "Use -.",
     "rejected_model": "llama-2-7b", "subset": "hep-python", "id": 3001},
    {"prompt": "Greet me.", "chosen": "Hello!", "chosen_model": "gpt-4", "rejected": "No.",
     "rejected_model": "alpaca-7b", "subset": "alpacaeval-easy", "id": 1},
]
REWARDBENCH2 = [  # allenai/reward-bench-2, split "test": best-of-4 and Ties rows
    {"id": "17", "prompt": "Capital of France?", "chosen": ["Paris."], "rejected": ["Lyon.", "Nice.", "Rome."],
     "num_correct": 1, "num_incorrect": 3, "total_completions": 4, "models": ["a", "b", "c", "d"],
     "subset": "Factuality"},
    {"id": "ref:0", "prompt": "Name a prime.", "chosen": ["2"], "rejected": ["4", "6"], "num_correct": 1,
     "num_incorrect": 2, "total_completions": 3, "models": ["a", "b", "c"], "subset": "Ties"},
    {"id": "tied:0", "prompt": "Name a prime.", "chosen": ["2", "3", "5"], "rejected": ["4"], "num_correct": 3,
     "num_incorrect": 1, "total_completions": 4, "models": ["a", "b", "c", "d"], "subset": "Ties"},
]
HH = [  # Anthropic/hh-rlhf
    {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello, how can I help?", "rejected": "\n\nHuman: Hi\n\nAssistant: What."},
]
TRL = [  # trl-lib preference formats: explicit prompt (strings or messages), implicit prompt, margin
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "margin": 1.5},
    {"prompt": [{"role": "user", "content": "Sky?"}], "chosen": [{"role": "assistant", "content": "Blue."}],
     "rejected": [{"role": "assistant", "content": "Green."}], "margin": 0.0},
]
TRL_IMPLICIT = [{"chosen": "The sky is blue.", "rejected": "The sky is green."},
                {"chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}],
                 "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}]}]


def _arrow_type(value):
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, list) and value and isinstance(value[0], str):
        return pa.list_(pa.string())
    if isinstance(value, list):
        return pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))
    return pa.string()


def _table(rows):
    schema = pa.schema([(k, _arrow_type(v)) for k, v in rows[0].items()])
    return pa.Table.from_pylist(rows, schema=schema)


def write(rows, path: Path, fmt: str) -> Path:
    """rows written as ``fmt``; Parquet in row groups of 2 rows, Arrow as datasets' save_to_disk lays it out."""
    if fmt == "jsonl":
        path = path.with_suffix(".jsonl")
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "jsonl.gz":
        path = path.with_suffix(".jsonl.gz")
        with gzip.open(path, "wt") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path = path.with_suffix(".json")
        path.write_text(json.dumps(rows))
    elif fmt == "parquet":
        path = path.with_suffix(".parquet")
        pq.write_table(_table(rows), path, row_group_size=2)
    else:  # datasets' save_to_disk: data-0000i-of-0000n.arrow (IPC streams), state.json, dataset_info.json
        path.mkdir()
        table = _table(rows)
        halves = [table.slice(0, 2), table.slice(2)] if table.num_rows > 2 else [table]
        names = [f"data-{i:05d}-of-{len(halves):05d}.arrow" for i in range(len(halves))]
        for name, part in zip(names, halves):
            with pa.OSFile(str(path / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(part)
        (path / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names]}))
        (path / "dataset_info.json").write_text(json.dumps({"features": {}}))
    return path


FORMATS = ["jsonl", "jsonl.gz", "json", "parquet", "arrow"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_every_row_in_order(tmp_path, fmt):
    rows = HELPSTEER2_PREFERENCE + HELPSTEER2_PREFERENCE  # 8 rows: several row groups / arrow files
    got = list(readers.read_rows(write(rows, tmp_path / "d", fmt)))
    assert [n for n, _ in got] == list(range(1, 9))
    assert [r for _, r in got] == rows


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("rows", "use", "schema"), [
    (HELPSTEER2, "regression", "helpsteer2"), (HELPSTEER2_PREFERENCE, "preference", "helpsteer2-preference"),
    (REWARDBENCH, "score", "rewardbench"), (REWARDBENCH2, "score", "rewardbench2"), (HH, "preference", "hh-rlhf"),
    (TRL[:1], "preference", "trl"), (TRL[1:], "preference", "trl"), (TRL_IMPLICIT[:1], "preference", "trl"),
])
def test_each_schema_is_recognised_in_each_format(tmp_path, fmt, rows, use, schema):
    reference = read_examples(write(rows, tmp_path / "ref", "jsonl"), use)
    examples = read_examples(write(rows, tmp_path / "d", fmt), use)
    assert examples.schema == reference.schema == schema
    assert examples.items == reference.items and examples.counts == reference.counts


def test_helpsteer2_preference_sign_split_margin_and_turns(tmp_path):
    path = write(HELPSTEER2_PREFERENCE, tmp_path / "pref", "jsonl")
    train = read_examples(path, "preference", split="train", strength_margin=True)
    assert train.counts == {"rows": 4, "kept": 2, "dropped_split": 1, "dropped_no_preference": 1}
    first, second = train.items
    assert first.chosen[-1]["content"] == "Hi!" and first.rejected[-1]["content"] == "Go away."  # -2: response_1
    assert second.chosen[-1]["content"] == "Six." and (first.margin, second.margin) == (2.0, 3.0)
    assert [m["role"] for m in second.chosen] == ["user", "assistant", "user", "assistant"]  # <extra_id_1> turns
    assert [m["content"] for m in second.chosen[:3]] == ["What is 2+2?", "Four.", "And 3+3?"]
    (val,) = read_examples(path, "preference", split="val").items
    assert val.chosen[-1]["content"] == "Bye." and val.margin == 0.0  # margins only when asked
    assert len(read_examples(path, "preference").items) == 3  # no split: every row with a preference


def test_trl_margin_and_message_rows(tmp_path):
    a, b = read_examples(write(TRL, tmp_path / "trl", "jsonl"), "preference").items
    assert a == PreferenceExample("The sky is blue.", "The sky is green.", margin=1.5)  # TRL: prompt + completion
    assert b.chosen == ({"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."})
    text, chat = read_examples(write(TRL_IMPLICIT[:1], tmp_path / "i1", "jsonl"), "preference").items + \
        read_examples(write(TRL_IMPLICIT[1:], tmp_path / "i2", "jsonl"), "preference").items
    assert text.chosen == "The sky is blue." and chat.chosen == b.chosen


def test_rewardbench_rows_keep_subset_and_id_and_rewardbench2_keeps_lists(tmp_path):
    (a, b) = read_examples(write(REWARDBENCH, tmp_path / "rb", "jsonl"), "score").items
    assert (a.subset, a.id, b.subset) == ("hep-python", "3001", "alpacaeval-easy")
    first, ref, tied = read_examples(write(REWARDBENCH2, tmp_path / "rb2", "jsonl"), "score").items
    assert isinstance(first, ScoreItem) and (len(first.chosen), len(first.rejected)) == (1, 3)
    assert (ref.id, tied.id, len(tied.chosen)) == ("ref:0", "tied:0", 3)
    with pytest.raises(DataError, match="rewardbench2 rows cannot be used as preference pairs"):
        read_examples(write(REWARDBENCH2, tmp_path / "rb2b", "jsonl"), "preference")


def test_a_schema_can_be_forced(tmp_path):
    path = write(REWARDBENCH, tmp_path / "rb", "jsonl")
    assert read_examples(path, "score", schema="trl").schema == "trl"
    with pytest.raises(DataError, match=r"rb.jsonl:1: column 'coherence' is missing for schema helpsteer2"):
        read_examples(path, "regression", schema="helpsteer2")
    with pytest.raises(DataError, match="unknown --schema 'hs3'; choose one of helpsteer2-preference, helpsteer2"):
        read_examples(path, "score", schema="hs3")


def test_parquet_is_read_one_row_group_at_a_time(tmp_path, monkeypatch):
    path = write(HELPSTEER2_PREFERENCE * 3, tmp_path / "big", "parquet")
    assert pq.ParquetFile(path).num_row_groups == 6
    monkeypatch.setattr(pq.ParquetFile, "read", lambda *a, **k: pytest.fail("the whole file was read"))
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("the whole file was read"))
    assert sum(1 for _ in readers.read_rows(path)) == 12


@pytest.mark.parametrize(("make", "match"), [
    (lambda d: write(HELPSTEER2, d / "a", "parquet").write_bytes(b"PAR1 not really"), r"a.parquet: not a readable Parquet"),
    (lambda d: (d / "b.parquet").write_bytes(b""), r"b.parquet: not a readable Parquet"),
    (lambda d: (write(HELPSTEER2, d / "c", "arrow") / "data-00000-of-00001.arrow").write_bytes(b"junk"),
     r"data-00000-of-00001.arrow: not a readable Arrow file"),
    (lambda d: (d / "e").mkdir(), r"e: a folder data file must be saved by datasets' save_to_disk"),
    (lambda d: (d / "f.csv").write_text("prompt\n"), r"f.csv: unsupported data file type; use .jsonl"),
    (lambda d: (d / "g.json").write_text('{"prompt": "x"}'), r"g.json: a .json data file must hold a list of rows"),
    (lambda d: (d / "h.json").write_text('[{"prompt": "x", "chosen": "a", "rejected": "b"}, 3]'),
     r"h.json:2: expected a JSON object"),
])
def test_broken_files_are_one_line_naming_the_file(tmp_path, make, match):
    make(tmp_path)
    target = next(p for p in sorted(tmp_path.iterdir(), key=lambda p: p.stat().st_mtime_ns))
    with pytest.raises(DataError, match=match) as info:
        read_examples(target, "preference")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("rows", "use", "match"), [
    ([{**HELPSTEER2_PREFERENCE[0], "response_1": ["Hi!"]}], "preference", r":1: column 'response_1' must be a string, got list"),
    ([{**HELPSTEER2_PREFERENCE[0], "response_2": "  "}], "preference", r":1: column 'response_2' is empty"),
    ([{**HELPSTEER2_PREFERENCE[0], "preference_strength": 7}], "preference",
     r":1: column 'preference_strength' must be a number in -3..3"),
    ([{**REWARDBENCH2[0], "chosen": ["Paris.", ""]}], "score", r":1: column 'chosen'\[1\] must be a non-empty string"),
    ([{**REWARDBENCH2[0], "num_correct": 2}], "score", r":1: column 'num_correct' must equal the 1 chosen"),
    ([REWARDBENCH[0], HELPSTEER2[0]], "score", r":2: column 'chosen' is missing for schema rewardbench"),
    ([TRL[0], HELPSTEER2_PREFERENCE[0]], "preference", r":2: column 'chosen' is missing for schema trl"),
])
def test_bad_cells_name_the_row_and_column(tmp_path, rows, use, match):
    with pytest.raises(DataError, match=match):
        read_examples(write(rows, tmp_path / "bad", "parquet" if use == "score" else "jsonl"), use)


def test_identical_pairs_are_dropped_and_counted(tmp_path):
    rows = [*TRL, {"prompt": "Same?", "chosen": "Yes.", "rejected": "Yes."}]
    examples = read_examples(write(rows, tmp_path / "t", "jsonl"), "preference")
    assert examples.counts == {"rows": 3, "kept": 2, "dropped_identical": 1}


def test_train_and_score_read_native_files_through_the_cli(tmp_path_factory, tmp_path, run):
    """HelpSteer2-Preference Parquet trains with its split and strength margin; RewardBench 2 scores from
    the CLI with its official v2 rules (the Ties rows included)."""
    pytest.importorskip("jax")
    pytest.importorskip("transformers")
    sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
    import builders as B

    ws = B.workspace(tmp_path_factory)
    rows = []
    for i, pair in enumerate(B.preference_rows(64, 5)):
        flip = i % 2  # response_1 is the chosen one on odd rows
        rows.append({"split": "train" if i < 48 else "val", "prompt": pair["prompt"],
                     "response_1": pair["rejected" if not flip else "chosen"],
                     "response_2": pair["chosen" if not flip else "rejected"],
                     "preference_strength": -2 if flip else 2, "preference_statement": "", "preference_elaboration": ""})
    pref = write(rows, tmp_path / "pref", "parquet")
    result = run("train", ws / "base", "--data", pref, "--eval-data", pref, "--recipe", "bradley_terry", "--out",
                 tmp_path / "run", "--lr", "1e-3", "--batch-size", "16", "--micro-batch", "8", "--max-length", "64",
                 "--buckets", "64", "--dtype", "float32", "--warmup-steps", "1", "--eval-every", "3", "--strength-margin",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["data"]["train_schema"] == summary["data"]["eval_schema"] == "helpsteer2-preference"
    assert summary["data"]["train_kept"] == 48 and summary["data"]["eval_kept"] == 16
    assert summary["data"]["train_dropped_split"] == 16 and summary["data"]["eval_dropped_split"] == 48

    model = Path(__file__).parent / "fixtures" / "models" / "qwen2-rm"
    scored = run("score", model, "--data", write(REWARDBENCH2, tmp_path / "rb2", "arrow"), "--format", "json",
                 "--out", tmp_path / "scores.jsonl")
    assert scored.exit_code == 0, scored.output
    rb = json.loads(scored.stdout)["rewardbench"]
    assert rb["version"] == "v2" and set(rb["subsets"]) == {"Factuality", "Ties"} and rb["ties"] is not None
    per_row = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert [len(r["scores_chosen"]) + len(r["scores_rejected"]) for r in per_row] == [4, 3, 4]
