"""Bad input: one `Error:` line on stderr naming the problem, exit 2, no traceback, nothing written."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, assert_one_line_error, write


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("", ["empty"]),
        ("model_id\n", ["no candidate rows"]),
        ("name,ifeval\nQwen/Qwen2.5-7B-Instruct,70\n", ["no 'model_id' column"]),
        ("model_id;ifeval\nQwen/Qwen2.5-7B-Instruct;70\n", ["semicolons"]),
        ("model_id\nQwen/Qwen2.5-7B-Instruct\nQwen/Qwen2.5-7B-Instruct\n", ["row 3", "duplicate model_id", "row 2"]),
        ("model_id,ifeval\nQwen/Qwen2.5-7B-Instruct,high\n", ["row 2", "column ifeval", "not a number"]),
        ("model_id,ifeval\nQwen/Qwen2.5-7B-Instruct,170\n", ["row 2", "column ifeval", "outside [0, 100]"]),
        ("model_id,ifeval\nQwen/Qwen2.5-7B-Instruct,-3\n", ["column ifeval", "outside"]),
        ("model_id,params_b\nQwen/Qwen2.5-7B-Instruct,inf\n", ["column params_b", "not a finite number"]),
        ("model_id,ifeval\nQwen/Qwen2.5-7B-Instruct,70,5\n", ["row 2", "fields"]),
        ("model_id\n\n", ["no candidate rows"]),
    ],
)
def test_bad_candidate_files(run, tmp_path, content, fragments):
    path = write(tmp_path / "c.csv", content)
    assert_one_line_error(run("rank", path), "c.csv", *fragments)


def test_missing_file(run, tmp_path):
    assert_one_line_error(run("rank", tmp_path / "nope.csv"), "nope.csv", "no such file")


def test_directory_instead_of_file(run, tmp_path):
    assert_one_line_error(run("rank", tmp_path), "is a directory")


def test_not_utf8(run, tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes("model_id\nQwen/Qwën\n".encode("latin-1"))
    assert_one_line_error(run("rank", path), "not UTF-8")


def test_binary_file(run, tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert_one_line_error(run("rank", path), "binary data")


@pytest.mark.parametrize("encoding, sep", [("utf-16", "\t"), ("utf-16", ","), ("utf-16-be", ","), ("utf-8-sig", "\t")])
def test_utf16_and_tab_separated_files_rank_like_the_csv(run, tmp_path, encoding, sep):
    """Excel's "Unicode Text" is UTF-16 with a byte-order mark, tab-separated, CRLF lines."""
    rows = [["model_id", "params_b"], ["Qwen/Qwen2.5-7B-Instruct", ""], ["google/gemma-2-9b-it", "9.24"]]
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    other = tmp_path / "c.txt"
    body = "\r\n".join(sep.join(r) for r in rows) + "\r\n"
    other.write_bytes(("\ufeff" + body).encode(encoding) if encoding == "utf-16-be" else body.encode(encoding))
    want, got = run("rank", csv_path, "--format", "json"), run("rank", other, "--format", "json")
    assert got.exit_code == 0, got.stderr
    assert json.loads(got.stdout)["candidates"] == json.loads(want.stdout)["candidates"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--recipe", "dpo"], ["--recipe", "dpo"]),
        (["--target", "overall"], ["--target"]),
        (["--top", "0"], ["--top"]),
        (["--max-params", "-1"], ["--max-params"]),
        (["--format", "xml"], ["--format"]),
        (["--no-such-option"], ["no-such-option"]),
    ],
)
def test_bad_options(run, args, fragments):
    assert_one_line_error(run("rank", EXAMPLES / "candidates.csv", *args), *fragments)


def test_neither_file_nor_pool(run):
    assert_one_line_error(run("rank"), "CANDIDATES.csv", "--pool")


def test_both_file_and_pool(run):
    assert_one_line_error(run("rank", EXAMPLES / "candidates.csv", "--pool", "leaderboard"), "either")


def test_predictor_dir_that_is_not_an_artifact(run, tmp_path):
    assert_one_line_error(run("rank", EXAMPLES / "candidates.csv", "--predictor", tmp_path), "not a basepick predictor")


def test_corrupt_artifact(run, tmp_path):
    import shutil

    from predictor.data.shipped import shipped_predictor_dir

    out = tmp_path / "p"
    shutil.copytree(shipped_predictor_dir(), out)
    write(out / "metadata.json", "{not json")
    assert_one_line_error(run("rank", EXAMPLES / "candidates.csv", "--predictor", out), "unreadable")


def test_fit_does_not_clobber_a_foreign_directory(run, tmp_path):
    (tmp_path / "mine").mkdir()
    write(tmp_path / "mine" / "keep.txt", "precious")
    assert_one_line_error(run("fit", "--out", tmp_path / "mine"), "not a basepick predictor")
    assert (tmp_path / "mine" / "keep.txt").read_text() == "precious"


def test_fit_with_bad_labels_writes_nothing(run, tmp_path):
    labels = write(tmp_path / "l.csv", "model_id,recipe\nx,regression\n")
    assert_one_line_error(run("fit", "--labels", labels, "--out", tmp_path / "out"), "l.csv", "no 'train_data' column")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.csv"]


def test_fit_with_labels_for_unknown_models(run, tmp_path):
    labels = write(
        tmp_path / "l.csv",
        "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score\nacme/x,regression,hs2,rb1,90,70,80,85,81.25\n",
    )
    assert_one_line_error(run("fit", "--labels", labels, "--out", tmp_path / "out"), "acme/x")
    assert not (tmp_path / "out").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300))
def test_random_bytes_never_traceback(run, tmp_path, payload):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(payload)
    result = run("rank", path, "--format", "json")
    if result.exit_code == 0:
        return  # bytes that happen to form a valid candidates file
    assert_one_line_error(result)


_cell = st.one_of(
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["Qwen/Qwen2.5-7B-Instruct", "google/gemma-2-9b-it", "", "NaN", "1e308", "-0", "\u202e\u0000"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.lists(st.sampled_from(["model_id", "ifeval", "bbh", "params_b", "notes", "presence_code", "post_training"]), min_size=1, max_size=5),
    cells=st.lists(st.lists(_cell, min_size=1, max_size=5), max_size=4),
)
def test_random_tables_exit_0_or_one_line_error(run, tmp_path, header, cells):
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(cells)
    path = tmp_path / "t.csv"
    path.write_bytes(buf.getvalue().encode("utf-8", "replace"))  # lone surrogates become '?'
    result = run("rank", path, "--format", "json")
    if result.exit_code != 0:
        assert_one_line_error(result)


def test_evaluate_with_labels_for_unknown_models(run, tmp_path):
    labels = write(
        tmp_path / "l.csv",
        "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score\nacme/x,regression,hs2,rb1,90,70,80,85,81.25\n",
    )
    assert_one_line_error(run("evaluate", "--labels", labels), "l.csv row 2", "acme/x has no benchmark scores", "--features")


_label_cell = st.one_of(
    st.sampled_from(["google/gemma-2-9b-it", "Qwen/Qwen2.5-7B-Instruct", "regression", "bradley_terry", "", "nan",
                     "101", "-5", "1e308", "80", "x"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.sampled_from([
        "model_id,recipe,train_data,eval,chat,chat_hard,safety,reasoning,score",
        "model_id,recipe,score",
        "model_id;recipe;train_data;eval;chat;chat_hard;safety;reasoning;score",
    ]),
    rows=st.lists(st.lists(_label_cell, min_size=9, max_size=9), max_size=3),
    raw=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_fit_on_random_label_files_is_exit_2_and_writes_nothing(run, tmp_path_factory, header, rows, raw):
    import csv
    import io

    folder = tmp_path_factory.mktemp("fit")
    if raw is None:
        buf = io.StringIO()
        csv.writer(buf).writerows([header.split(",")] + rows)
        (folder / "l.csv").write_bytes(buf.getvalue().encode("utf-8", "replace"))
    else:
        (folder / "l.csv").write_bytes(raw)
    result = run("fit", "--no-shipped-labels", "--labels", folder / "l.csv", "--out", folder / "out")
    if result.exit_code == 0:  # a valid (tiny) label file is not expected from these strategies
        pytest.fail(f"fit accepted {rows!r}")
    assert_one_line_error(result)
    assert not (folder / "out").exists()


@pytest.mark.parametrize("args", [["rank", "/dev/zero"], ["check", "/dev/zero"],
                                  ["ingest", "tests/fixtures/harness/pythia-1b", "--out", "/dev/full"],
                                  ["evaluate", "--labels", "/dev/zero"]])
def test_a_device_is_refused_not_read_forever(run, monkeypatch, args):
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    assert_one_line_error(run(*args), "/dev/", "a device, not a CSV file")
