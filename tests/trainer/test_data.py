"""Preference / regression readers, tokenization and bucketed resumable batches (no jax needed)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predictor.errors import ArtifactError, DataError
from trainer_jax.data import batching, encode, schemas
from trainer_jax.data.tokenizer import load_tokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "preferences"
HH20 = FIXTURES / "hh_rlhf_harmless_base_test_first20.jsonl.gz"
SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|system|>"]
TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|eos|>{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def build_tokenizer_dir(path: Path, chat_template: str | None) -> Path:
    """A tiny real byte-level BPE tokenizer (BOS added as a special token) saved as a Llama-typed directory."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    with gzip.open(HH20, "rt", encoding="utf-8") as f:
        corpus = [json.loads(line)["chosen"] for line in f]
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<|bos|> $A", special_tokens=[("<|bos|>", 1)])
    path.mkdir(parents=True)
    tok.save(str(path / "tokenizer.json"))
    config = {"bos_token": "<|bos|>", "eos_token": "<|eos|>", "pad_token": "<|pad|>", "model_max_length": 4096}
    if chat_template:
        config["chat_template"] = chat_template
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 600}))
    return path


@pytest.fixture(scope="module")
def chat_tokenizer(tmp_path_factory):
    pytest.importorskip("transformers")
    return load_tokenizer(build_tokenizer_dir(tmp_path_factory.mktemp("tok") / "chat", TEMPLATE))


@pytest.fixture(scope="module")
def plain_tokenizer(tmp_path_factory):
    pytest.importorskip("transformers")
    return load_tokenizer(build_tokenizer_dir(tmp_path_factory.mktemp("tok") / "plain", None))


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# -------------------------------------------------------------------------------------------- readers
def pairs(path) -> list:
    return schemas.read_examples(path, "preference").items


def test_hh_transcripts_parse_into_alternating_chat_messages():
    examples = pairs(HH20)
    assert len(examples) == 20 and schemas.read_examples(HH20, "preference").schema == "hh-rlhf"
    first = examples[0]
    assert first.chosen[0] == {"role": "user", "content": "what are some pranks with a pen i can do?"}
    assert first.chosen[1] == {"role": "assistant", "content": "Are you looking for practical joke ideas?"}
    assert first.chosen[-1]["content"].startswith("No, sorry!  All of these involve a pen")
    assert first.rejected[-1]["content"].startswith("There are lots of funny things you can do with pens")
    for ex in examples:
        for conv in (ex.chosen, ex.rejected):
            assert [m["role"] for m in conv] == ["user", "assistant"] * (len(conv) // 2)
            assert all("\n\nHuman:" not in m["content"] and "\n\nAssistant:" not in m["content"] for m in conv)
        assert ex.chosen[:-1] == ex.rejected[:-1]  # HH pairs share the prompt
    with gzip.open(HH20, "rt", encoding="utf-8") as f:
        raw = json.loads(f.readline())["chosen"]
    rebuilt = "".join(f"\n\n{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in first.chosen)
    assert rebuilt == raw


def test_hh_same_speaker_runs_are_merged():
    turns = schemas.parse_hh_transcript("Human: a\n\nHuman: b\n\nAssistant: c", "x")
    assert turns == [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c"}]


def test_every_pair_shape_normalises_to_the_same_example(tmp_path):
    user, good, bad = {"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}, {
        "role": "assistant", "content": "B"}
    trl = [
        {"prompt": [user], "chosen": [good], "rejected": [bad]},
        {"chosen": [user, good], "rejected": [user, bad]},
        {"prompt": "Q?", "chosen": [user, good], "rejected": [user, bad]},
    ]
    hh = [{"chosen": "\n\nHuman: Q?\n\nAssistant: A", "rejected": "\n\nHuman: Q?\n\nAssistant: B"}]
    expected = schemas.PreferenceExample((user, good), (user, bad))
    assert pairs(write_jsonl(tmp_path / "trl.jsonl", trl)) == [expected] * len(trl)
    assert pairs(write_jsonl(tmp_path / "hh.jsonl", hh)) == [expected]
    rb = [{"prompt": "Q?", "chosen": "A", "rejected": "B", "subset": "shp"}]  # RewardBench: a user/assistant chat
    assert pairs(write_jsonl(tmp_path / "rb.jsonl", rb)) == [schemas.PreferenceExample((user, good), (user, bad),
                                                                                       subset="shp")]


def test_trl_strings_are_text_as_trl_makes_it(tmp_path):
    (ex,) = pairs(write_jsonl(tmp_path / "p.jsonl", [{"chosen": "The sky is blue.", "rejected": "The sky is green."}]))
    assert (ex.chosen, ex.rejected) == ("The sky is blue.", "The sky is green.")  # implicit prompt: whole texts
    (ex,) = pairs(write_jsonl(tmp_path / "q.jsonl", [{"prompt": "Sky? ", "chosen": "Blue.", "rejected": "Green."}]))
    assert (ex.chosen, ex.rejected) == ("Sky? Blue.", "Sky? Green.")  # explicit prompt: prompt + completion


def test_helpsteer2_rows_single_and_multi_turn(tmp_path):
    attrs = {"helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 2}
    rows = [{"prompt": "Hi", "response": "Hello", **attrs},
            {"prompt": "First<extra_id_1>Assistant\nReply<extra_id_1>User\nSecond", "response": "Answer", **attrs}]
    a, b = schemas.read_examples(write_jsonl(tmp_path / "hs2.jsonl", rows), "regression").items
    assert a.messages == ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"})
    assert [m["role"] for m in b.messages] == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in b.messages] == ["First", "Reply", "Second", "Answer"]
    assert a.targets == (3.0, 4.0, 4.0, 1.0, 2.0)


GOOD = {"prompt": "Q", "chosen": "A", "rejected": "B"}
ATTRS = {"helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 2}


@pytest.mark.parametrize(
    "use, rows, match",
    [
        ("preference", [GOOD, '{"prompt": "Q", "chosen": '], r"p\.jsonl:2: not valid JSON"),
        ("preference", [GOOD, {"prompt": "Q", "chosen": "A"}], r"p\.jsonl:2: column 'rejected' is missing for schema trl"),
        ("preference", [{"prompt": "Q", "chosen": [{"content": "A"}], "rejected": "B"}],
         r":1: column 'chosen'\[0\] must be"),
        ("preference", [{"chosen": [{"role": "user", "content": "Q"}], "rejected": [
            {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}],
         r":1: column 'chosen': a conversation must end with an assistant turn"),
        ("preference", [{"prompt": 3, "chosen": "A", "rejected": "B"}], r":1: column 'prompt' must be a string"),
        ("preference", [GOOD, GOOD, "[1]"], r"p\.jsonl:3: expected a JSON object"),
        ("preference", [], r"p\.jsonl: no rows"),
        ("preference", [{"prompt": "Q", "chosen": "A", "rejected": "A"}] * 2, r"no usable rows \(2 read; dropped: "
         r"\{'dropped_identical': 2\}\)"),
        ("preference", [{"prompt": "Q", "chosen": "", "rejected": "B"}], r":1: column 'chosen' is empty"),
        ("preference", [{"prompt": "Q", "chosen": ["A"], "rejected": "B"}], r":1: column 'chosen'\[0\] must be"),
        ("preference", [{"question": "Q", "answer": "A"}], r":1: unknown row schema with columns \['answer', "
         r"'question'\]; known schemas: helpsteer2-preference \(preference_strength, prompt, response_1"),
        ("preference", [GOOD, {"prompt": "Q", "chosen": "A", "rejected": "B", "response_1": "x", "response_2": "y",
                               "preference_strength": 1}], r":2: mixed schemas: this row fits helpsteer2-preference"),
        ("preference", [{"prompt": "Q", "response": "A", **ATTRS}], r"helpsteer2 rows cannot be used as preference"),
        ("regression", [{"prompt": "Q", "response": "A", **ATTRS, "verbosity": "2"}],
         r":1: column 'verbosity' must be a finite number"),
        ("regression", [{"prompt": "Q", **ATTRS, "response": 3}], r":1: column 'response' must be a string, got int"),
        ("regression", [{"prompt": "Q<extra_id_1>Bot\nx", "response": "A", **ATTRS}],
         r":1: column 'prompt' has an <extra_id_1> marker"),
    ],
)
def test_malformed_rows_name_the_file_row_and_column(tmp_path, use, rows, match):
    with pytest.raises(DataError, match=match) as info:
        schemas.read_examples(write_jsonl(tmp_path / "p.jsonl", rows), use)
    assert "\n" not in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["user", "assistant", "\n\nHuman: hi\n\nAssistant: yo", "Human: a", "x<extra_id_1>User\ny"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["role", "content"]), inner),
    max_leaves=6)
COLUMNS = ["prompt", "chosen", "rejected", "response", "response_1", "response_2", "preference_strength", "split",
           "subset", "margin", "num_correct", *schemas.ATTRIBUTES]


@settings(max_examples=200, deadline=None)
@given(row=st.dictionaries(st.sampled_from(COLUMNS), json_values), use=st.sampled_from(["preference", "regression", "score"]))
def test_arbitrary_rows_parse_or_raise_a_one_line_data_error(row, use):
    schema = schemas.detect(row)
    if schema is None:
        return
    try:
        example = schemas.parse_row(row, "f.jsonl:7", use, schema)
    except DataError as e:
        assert str(e).startswith("f.jsonl:7: ") and "\n" not in str(e)
        return
    if example is None:  # dropped: identical sides, no preference, another split
        return
    if use == "regression":
        assert example.messages[-1]["role"] == "assistant"
    else:
        sides = (example.chosen, example.rejected) if use == "preference" else (*example.chosen, *example.rejected)
        for conv in sides:
            assert isinstance(conv, str) and conv.strip() or conv[-1]["role"] == "assistant"


def test_missing_file_and_bad_tokenizer_dir(tmp_path):
    with pytest.raises(DataError, match="not found"):
        schemas.read_examples(tmp_path / "nope.jsonl", "preference")
    pytest.importorskip("transformers")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no tokenizer files"):
        load_tokenizer(tmp_path / "empty")
    with pytest.raises(ArtifactError, match="tokenizer directory not found"):
        load_tokenizer(tmp_path / "absent")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tokenizer.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"broken: cannot load its tokenizer \(") as info:
        load_tokenizer(tmp_path / "broken")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------- tokenization
def test_chat_template_is_used_without_a_second_bos(chat_tokenizer):
    conv = ({"role": "user", "content": "what are some pranks?"}, {"role": "assistant", "content": "None."})
    assert encode.render(chat_tokenizer, conv) == "<|bos|><|user|>what are some pranks?<|eos|><|assistant|>None.<|eos|>"
    (ids,) = encode.encode(chat_tokenizer, [conv])
    assert ids.count(chat_tokenizer.bos_token_id) == 1 and ids[0] == chat_tokenizer.bos_token_id
    assert chat_tokenizer.decode(ids) == encode.render(chat_tokenizer, conv)


def test_plain_format_without_chat_template(plain_tokenizer):
    conv = ({"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"})
    assert encode.render(plain_tokenizer, conv) == "System: Be kind.\n\nUser: Hi\n\nAssistant: Hello"
    (ids,) = encode.encode(plain_tokenizer, [conv])
    assert ids[0] == plain_tokenizer.bos_token_id and ids[-1] == plain_tokenizer.eos_token_id
    assert plain_tokenizer.decode(ids[1:-1]) == encode.render(plain_tokenizer, conv)


def test_trl_text_rows_encode_as_trls_reward_trainer_does(chat_tokenizer, tmp_path):
    """TRL (RewardTrainer, 2026): add_eos appends the EOS text unless present, then processing_class(text=...);
    a chat template is never applied to strings."""
    rows = [{"prompt": "what are some pranks? ", "chosen": "None.", "rejected": "Many!"},
            {"chosen": "The sky is blue.<|eos|>", "rejected": "The sky is green."}]
    items = pairs(write_jsonl(tmp_path / "trl.jsonl", rows))
    ids = encode.encode(chat_tokenizer, [side for ex in items for side in (ex.chosen, ex.rejected)])
    texts = ["what are some pranks? None.", "what are some pranks? Many!", "The sky is blue.", "The sky is green."]
    assert ids == [list(chat_tokenizer(text=t + "<|eos|>")["input_ids"]) for t in texts]
    assert ids[0][0] == chat_tokenizer.bos_token_id and ids[0][-1] == chat_tokenizer.eos_token_id
    assert chat_tokenizer.convert_tokens_to_ids("<|user|>") not in ids[0]


def test_a_template_that_refuses_a_conversation_is_a_data_error():
    class StrictTemplate:
        chat_template = "{{ raise_exception('System role not supported') }}"

        def apply_chat_template(self, messages, **kwargs):
            raise ValueError("System role not supported")

    conv = ({"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"})
    with pytest.raises(DataError, match=r"rejected a system/user/assistant conversation \(System role not supported\)"):
        encode.encode(StrictTemplate(), [conv])


def test_over_length_pairs_filtered_or_left_truncated(chat_tokenizer):
    examples = pairs(HH20)
    full_c = encode.encode(chat_tokenizer, [e.chosen for e in examples])
    full_r = encode.encode(chat_tokenizer, [e.rejected for e in examples])
    longest = [max(len(c), len(r)) for c, r in zip(full_c, full_r)]
    limit = int(np.median(longest))
    over = [i for i, n in enumerate(longest) if n > limit]
    assert 0 < len(over) < len(examples)

    kept = encode.tokenize_preferences(examples, chat_tokenizer, encode.TokenizeConfig(max_length=limit))
    assert (kept.n_filtered, kept.n_truncated) == (len(over), 0)
    assert kept.source_index.tolist() == [i for i in range(20) if i not in over]
    assert all(np.array_equal(s[0], full_c[i]) for s, i in zip(kept.sequences, kept.source_index))

    cut = encode.tokenize_preferences(examples, chat_tokenizer, encode.TokenizeConfig(max_length=limit, truncate_left=True))
    assert (cut.n_filtered, cut.n_truncated) == (0, len(over)) and len(cut.sequences) == 20
    assert cut.lengths.max() == limit
    for i in over:  # left truncation keeps the end of the conversation (the answer and the last token)
        assert cut.sequences[i][0].tolist() == full_c[i][-limit:]
        assert cut.sequences[i][1].tolist() == full_r[i][-limit:]
    with pytest.raises(DataError, match="every example is longer"):
        encode.tokenize_preferences(examples, chat_tokenizer, encode.TokenizeConfig(max_length=3))


def test_pair_batches_put_chosen_rows_first(chat_tokenizer):
    examples = pairs(HH20)
    data = encode.tokenize_preferences(examples, chat_tokenizer, encode.TokenizeConfig(max_length=4096))
    config = batching.BatchConfig(batch_size=3, buckets=tuple(range(16, 4097, 16)), seed=7)
    batches = list(batching.iterate_batches(data, config, num_epochs=1))
    assert len(batches) == batching.num_batches(20, config) == 7
    for batch in batches:
        b, t = config.batch_size, batch.input_ids.shape[1]
        assert batch.input_ids.shape == batch.attention_mask.shape == (2 * b, t)
        assert batch.input_ids.dtype == np.int32 and t % 16 == 0 and batch.targets is None
        for row, i in enumerate(batch.indices):
            if i < 0:
                assert not batch.attention_mask[row].any() and not batch.attention_mask[b + row].any()
                continue
            for side, seq in ((row, data.sequences[i][0]), (b + row, data.sequences[i][1])):
                n = int(batch.attention_mask[side].sum())
                assert batch.input_ids[side, :n].tolist() == seq.tolist() and batch.attention_mask[side, :n].all()
    assert sum(int(b.valid.sum()) for b in batches) == 20


def test_regression_batches_carry_targets(chat_tokenizer):
    rows = [schemas.RegressionExample(({"role": "user", "content": "q" * k}, {"role": "assistant", "content": "a"}),
                                (k, 1.0, 2.0, 3.0, -k)) for k in range(1, 6)]
    data = encode.tokenize_regression(rows, chat_tokenizer)
    batches = list(batching.iterate_batches(data, batching.BatchConfig(batch_size=2, buckets=(8, 16, 64)), num_epochs=1))
    for batch in batches:
        assert batch.input_ids.shape[0] == 2 and batch.targets.shape == (2, 5) and batch.targets.dtype == np.float32
        for row, i in enumerate(batch.indices):
            expected = data.targets[i] if i >= 0 else np.zeros(5)
            assert np.array_equal(batch.targets[row], expected)
    assert sorted(int(i) for b in batches for i in b.indices if i >= 0) == list(range(5))


# ------------------------------------------------------------------------------ bucketing properties
def synthetic(lengths: list[tuple[int, int]]) -> encode.TokenizedData:
    seqs = tuple((np.arange(1, c + 1, dtype=np.int32), np.arange(1, r + 1, dtype=np.int32) + 1000)
                 for c, r in lengths)
    return encode.TokenizedData(seqs, None, np.zeros(len(seqs), np.float32), np.arange(len(seqs)), 0, 0)


pair_lengths = st.lists(st.tuples(st.integers(1, 60), st.integers(1, 60)), min_size=1, max_size=40)
bucket_sets = st.lists(st.integers(1, 59), max_size=5).map(lambda b: tuple(sorted(set(b))) + (60,))
configs = st.builds(batching.BatchConfig, batch_size=st.integers(1, 7), buckets=bucket_sets,
                    window_batches=st.integers(1, 4), seed=st.integers(0, 2**31), shuffle=st.booleans())


@settings(max_examples=60, deadline=None)
@given(lengths=pair_lengths, config=configs)
def test_every_example_once_per_epoch_within_max_length(lengths, config):
    data = synthetic(lengths)
    for epoch in range(2):
        batches = list(batching.iterate_batches(data, config, batching.DataPosition(epoch, 0), num_epochs=epoch + 1))
        seen = [int(i) for b in batches for i in b.indices[b.valid]]
        assert sorted(seen) == list(range(len(lengths)))
        for b in batches:
            t = b.input_ids.shape[1]
            assert t in config.buckets and b.input_ids.shape == (2 * config.batch_size, t)
            longest = max(max(lengths[i]) for i in b.indices[b.valid])
            assert t == min(x for x in config.buckets if x >= longest)  # the smallest bucket that holds it
        assert batches[-1].position == batching.DataPosition(epoch + 1, 0)


@settings(max_examples=40, deadline=None)
@given(lengths=pair_lengths, config=configs, cut=st.floats(0, 1))
def test_resume_from_any_position_gives_the_same_stream(lengths, config, cut):
    data = synthetic(lengths)
    stream = list(batching.iterate_batches(data, config, num_epochs=3))
    k = int(cut * len(stream))
    start = stream[k - 1].position if k else batching.DataPosition()
    resumed = list(batching.iterate_batches(data, config, start, num_epochs=3))
    assert len(resumed) == len(stream) - k
    for a, b in zip(resumed, stream[k:]):
        assert np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.indices, b.indices)
        assert a.position == b.position


def test_shuffling_is_seeded_and_changes_per_epoch():
    data = synthetic([(n % 13 + 1, n % 7 + 1) for n in range(50)])
    config = batching.BatchConfig(batch_size=4, buckets=(16, 32, 60), seed=3)
    order = lambda c, e: [int(i) for b in batching.epoch_plan(data.lengths, c, e) for i in b]  # noqa: E731
    assert order(config, 0) == order(batching.BatchConfig(batch_size=4, buckets=(16, 32, 60), seed=3), 0)
    assert order(config, 0) != order(config, 1)
    assert order(config, 0) != order(batching.BatchConfig(batch_size=4, buckets=(16, 32, 60), seed=4), 0)


EIGHTS = tuple(range(8, 201, 8))


def test_default_buckets_bound_the_compiled_shapes():
    assert batching.default_buckets(2048) == (256, 512, 1024, 1536, 2048)
    assert batching.default_buckets(4096) == (512, 1024, 2048, 3072, 4096)
    assert batching.default_buckets(100) == (64, 100)
    assert batching.default_buckets(50) == (50,)
    assert batching.bucket_length(257, (256, 512)) == 512
    with pytest.raises(ValueError, match="longer than the largest bucket"):
        batching.bucket_length(513, (256, 512))


def test_bucketing_reduces_padding_and_drop_last():
    rng = np.random.default_rng(0)
    data = synthetic([(int(n), int(n)) for n in rng.integers(1, 200, size=256)])
    padded = lambda c: sum(b.input_ids.size for b in batching.iterate_batches(data, c, num_epochs=1))  # noqa: E731
    bucketed = batching.BatchConfig(batch_size=8, buckets=EIGHTS, window_batches=32)
    assert padded(bucketed) < 0.75 * padded(batching.BatchConfig(batch_size=8, buckets=EIGHTS, window_batches=1))
    dropped = batching.BatchConfig(batch_size=10, buckets=EIGHTS, drop_last=True)
    batches = list(batching.iterate_batches(data, dropped, num_epochs=1))
    assert len(batches) == batching.num_batches(256, dropped) == 25 and all(b.valid.all() for b in batches)
