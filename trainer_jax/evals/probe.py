"""``basepick probe``: per-domain "presence" features of a base model (how well it predicts each domain).

A document's score is the mean over positions 2..n of log p(t_i | t_<i) in nats per token, where
t_1..t_n are the first n = min(#tokens, N) tokens exactly as the model's tokenizer produces them (special
tokens included, so t_1 is often BOS). ``presence_<domain>`` is the mean document score of the domain and
``spread_<domain>`` its population standard deviation (ddof 0); ``docs_<domain>`` counts the documents
scored (documents under 2 tokens are skipped with a note). Only ``presence_*`` columns are predictor
features (``predictor.data.features.is_presence``). Domain names become column suffixes: lower case, other
characters folded to '_' ("Q&A" -> "q_a").

Flow: check the model dir -> read the corpus (JSONL or JSONL.gz rows ``{"domain", "text"}``) -> tokenize
-> per domain, batches of length-sorted documents, right-padded to a few bucket lengths -> fp32
log-softmax of the LM head in sequence chunks -> per-document scores -> FEATURES.csv row (atomic, other
rows kept). Finished domains are kept in a sidecar JSON next to the output (``<out>.partial-<id>.json``)
so an interrupted run resumes where it stopped; the sidecar is removed on completion.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from predictor.data.atomic import atomic_file, check_writable
from predictor.data.shipped import sha256
from predictor.errors import DataError
from trainer_jax import require_train_extra
from trainer_jax.data.readers import read_jsonl

SCHEMA_VERSION = 1
DEFAULT_TOKENS = 2048  # the seed study's first 2,048 tokens per document
LOGIT_CHUNK = 256  # positions per LM-head chunk: bounds the (B, chunk, V) fp32 logits in memory


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    model_id: str  # row key written to FEATURES.csv (and the scores file)
    tokens: int  # N: each document is cut to its first N tokens
    docs_per_domain: int | None  # score only the first K documents of each domain (None = all)
    batch_size: int  # documents per forward pass
    dtype: str  # decoder compute dtype ("float32" or "bfloat16"); the log-softmax is always fp32


@dataclasses.dataclass(frozen=True)
class DomainScores:
    domain: str  # normalised domain name (column suffix)
    scores: tuple[float, ...]  # per scored document: mean log-prob, nats/token, <= 0
    n_tokens: tuple[int, ...]  # per scored document: n, tokens kept after truncation (n - 1 are scored)
    docs: tuple[int, ...]  # per scored document: its index among the domain's rows in the corpus
    skipped: int  # documents with fewer than 2 tokens (nothing to score)

    @property
    def presence(self) -> float:
        return float(np.mean(self.scores))

    @property
    def spread(self) -> float:
        return float(np.std(self.scores))  # population std (ddof 0), nats/token


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    config: ProbeConfig  # what was run
    out_path: str  # FEATURES.csv written
    domains: tuple[DomainScores, ...]  # in corpus order of first appearance
    resumed: tuple[str, ...]  # domains taken from an interrupted run's sidecar

    def feature_row(self) -> dict[str, str]:
        """The FEATURES.csv cells of this model (model_id excluded)."""
        row = {f"presence_{d.domain}": format(d.presence, ".8g") for d in self.domains}
        row |= {f"spread_{d.domain}": format(d.spread, ".8g") for d in self.domains}
        row |= {f"docs_{d.domain}": str(len(d.scores)) for d in self.domains}
        row["probe_tokens"] = str(self.config.tokens)
        return row


def default_corpus() -> Path:
    """The shipped probe corpus (``data/probe/corpus.jsonl.gz``; ``predictor/_data/probe/`` in a wheel)."""
    from predictor.data.shipped import data_root

    return data_root() / "probe" / "corpus.jsonl.gz"


def normalise_domain(name: str) -> str:
    """Column-safe domain name: lower case, runs of other characters become '_' ("ArXiv" -> "arxiv")."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def default_model_id(model_dir: str | Path) -> str:
    """The directory name, or ``org/name`` for a Hugging Face cache snapshot (models--org--name/snapshots/x)."""
    path = Path(model_dir).resolve()
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name.removeprefix("models--").replace("--", "/")
    return path.name


# --------------------------------------------------------------------------------------------------
# Corpus


def read_corpus(path: str | Path, docs_per_domain: int | None = None) -> dict[str, list[str]]:
    """Domain -> texts in file order (first K per domain if given); DataError naming file:line on bad rows."""
    path = Path(path)
    domains: dict[str, list[str]] = {}
    raw_names: dict[str, str] = {}
    for lineno, row in read_jsonl(path, "corpus file"):
        where = f"{path}:{lineno}"
        for field in ("domain", "text"):
            if not isinstance(row.get(field), str):
                raise DataError(f"{where}: field '{field}' is missing or not a string")
        domain = normalise_domain(row["domain"])
        if not domain:
            raise DataError(f"{where}: empty domain name {row['domain']!r}; use letters or digits")
        if raw_names.setdefault(domain, row["domain"]) != row["domain"]:
            raise DataError(
                f"{where}: domains {raw_names[domain]!r} and {row['domain']!r} both become column "
                f"suffix {domain!r}; rename one"
            )
        texts = domains.setdefault(domain, [])
        if docs_per_domain is None or len(texts) < docs_per_domain:
            texts.append(row["text"])
    if not domains:
        raise DataError(f"{path}: no documents; expected JSONL rows {{\"domain\": ..., \"text\": ...}}")
    return domains


# --------------------------------------------------------------------------------------------------
# Scoring


def padded_length(n: int) -> int:
    """Bucket for n tokens: powers of two from 16 up to LOGIT_CHUNK, then multiples of it (few compilations)."""
    if n <= LOGIT_CHUNK:
        return max(16, 1 << (n - 1).bit_length())
    return -(-n // LOGIT_CHUNK) * LOGIT_CHUNK


def make_scorer(model) -> Callable:
    """``(ids, mask) -> (sum of log p over scored positions (B,), scored positions (B,))`` for a CausalLM.

    Position i (0-based) predicts token i + 1 and is scored when both are real tokens, so any amount of
    padding on either side leaves the real rows' results unchanged. Models of one architecture share
    compilations (the graph definition is a static argument of one jitted function).
    """
    from flax import nnx

    graphdef, state = nnx.split(model)
    forward = _jitted_forward()
    return lambda ids, mask: forward(graphdef, state, ids, mask)


@functools.cache
def _jitted_forward() -> Callable:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    def forward(graphdef, state, ids, mask):
        lm = nnx.merge(graphdef, state)
        hidden = lm(ids, mask)  # (B, T, D)
        b, t, _ = hidden.shape
        chunk = min(t, LOGIT_CHUNK)
        m = mask.astype(jnp.float32)  # (B, T)
        targets = jnp.concatenate([ids[:, 1:], jnp.zeros((b, 1), ids.dtype)], axis=1)  # (B, T) next token
        weight = m * jnp.concatenate([m[:, 1:], jnp.zeros((b, 1), m.dtype)], axis=1)  # (B, T) 1 = scored

        def one_chunk(args):
            h, y, w = args  # (B, K, D), (B, K), (B, K)
            logp = jax.nn.log_softmax(lm.logits(h).astype(jnp.float32), axis=-1)  # (B, K, V) fp32
            picked = jnp.take_along_axis(logp, y[..., None], axis=-1)[..., 0]  # (B, K) log p(next token)
            return jnp.sum(picked * w, axis=1)  # (B,)

        def chunks(x):  # (B, T, ...) -> (T / K, B, K, ...)
            return jnp.moveaxis(x.reshape(b, t // chunk, chunk, *x.shape[2:]), 1, 0)

        sums = jax.lax.map(one_chunk, (chunks(hidden), chunks(targets), chunks(weight)))  # (T / K, B)
        return sums.sum(axis=0), weight.sum(axis=1)

    return jax.jit(forward, static_argnums=0)


def score_documents(
    scorer: Callable, docs: Sequence[Sequence[int]], *, batch_size: int, advance: Callable[[int], None] | None = None
) -> np.ndarray:
    """Mean log-prob (nats/token) of each token sequence (each >= 2 tokens, already truncated), input order."""
    if any(len(d) < 2 for d in docs):
        raise ValueError("every document needs at least 2 tokens")
    out = np.zeros(len(docs), np.float64)  # (N,) nats/token
    order = sorted(range(len(docs)), key=lambda i: -len(docs[i]))  # long first: similar lengths share a batch
    for start in range(0, len(docs), batch_size):
        idx = order[start : start + batch_size]
        t = padded_length(len(docs[idx[0]]))
        ids = np.zeros((batch_size, t), np.int32)  # (B, T) right-padded token ids
        mask = np.zeros((batch_size, t), np.int32)  # (B, T) 1 = real token
        mask[:, 0] = 1  # filler rows hold one token so no row is empty
        for b, i in enumerate(idx):
            ids[b, : len(docs[i])] = docs[i]
            mask[b, : len(docs[i])] = 1
        sums, counts = (np.asarray(a, np.float64) for a in scorer(ids, mask))
        out[idx] = sums[: len(idx)] / counts[: len(idx)]
        if advance is not None:
            advance(len(idx))
    return out


# --------------------------------------------------------------------------------------------------
# Files: sidecar, FEATURES.csv, scores JSONL (all written atomically)


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    with atomic_file(path, newline="") as f:
        write(f)


def partial_path(out_path: str | Path, model_id: str) -> Path:
    """Sidecar of finished domains for one model, next to the FEATURES file."""
    out = Path(out_path)
    slug = re.sub(r"[^0-9A-Za-z._-]+", "_", model_id)
    return out.with_name(f"{out.name}.partial-{slug}.json")


def _load_partial(path: Path, key: dict[str, Any], note: Callable[[str], None]) -> dict[str, DomainScores]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:
            note(f"{path} is from a different run (model, corpus or settings changed); starting over")
            return {}
        return {d: DomainScores(d, tuple(v["scores"]), tuple(v["n_tokens"]), tuple(v["docs"]), int(v["skipped"]))
                for d, v in data["domains"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        note(f"{path} is unreadable; starting over")
        return {}


def _save_partial(path: Path, key: dict[str, Any], done: dict[str, DomainScores]) -> None:
    domains = {d: {"scores": list(s.scores), "n_tokens": list(s.n_tokens), "docs": list(s.docs), "skipped": s.skipped}
               for d, s in done.items()}
    payload = {"schema_version": SCHEMA_VERSION, "key": key, "domains": domains}
    _write_atomic(path, lambda f: f.write(json.dumps(payload) + "\n"))


def _read_features(path: Path) -> tuple[list[str], list[list[str]]]:
    from predictor.data.tables import read_csv, require_column

    if not path.exists():
        return ["model_id"], []
    header, rows = read_csv(path)
    require_column(path, header, "model_id")
    return header, rows


def _read_scores_lines(path: Path, model_id: str | None) -> list[str]:
    """Lines of an existing scores file that belong to other models; DataError if it is not a scores file."""
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line for line in lines if line.strip() and json.loads(line)["model_id"] != model_id]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        message = f"{path}: exists but is not a probe scores file ({exc}); choose another --scores-out"
        raise DataError(message) from None


def update_features_csv(path: str | Path, model_id: str, cells: dict[str, str]) -> None:
    """Set this model's cells in FEATURES.csv: other rows and other columns are kept, new columns appended."""
    path = Path(path)
    header, rows = _read_features(path)
    records = [dict(zip(header, row)) for row in rows]
    header = header + [name for name in cells if name not in header]
    mine = next((r for r in records if r["model_id"] == model_id), None)
    if mine is None:
        records.append(mine := {"model_id": model_id})
    mine.update(cells)

    def write(f):
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([r.get(name, "") for name in header] for r in records)

    _write_atomic(path, write)


def update_scores_jsonl(path: str | Path, model_id: str, domains: Sequence[DomainScores]) -> None:
    """Per-document scores (one JSON row each) for ``basepick probe compare``; other models' rows are kept."""
    path = Path(path)
    kept = _read_scores_lines(path, model_id)
    rows = [json.dumps({"model_id": model_id, "domain": d.domain, "doc": doc, "tokens": n, "score": s})
            for d in domains for doc, n, s in zip(d.docs, d.n_tokens, d.scores)]
    _write_atomic(path, lambda f: f.write("".join(line + "\n" for line in kept + rows)))


# --------------------------------------------------------------------------------------------------
# The job


def _progress(enabled: bool | None):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    disable = not console.is_terminal if enabled is None else not enabled
    columns = (TextColumn("probe {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, disable=disable, transient=False)


def probe(
    model_dir: str | Path,
    corpus_path: str | Path,
    out_path: str | Path,
    *,
    model_id: str | None = None,
    tokens: int = DEFAULT_TOKENS,
    docs_per_domain: int | None = None,
    batch_size: int = 8,
    dtype: str = "float32",
    scores_out: str | Path | None = None,
    progress: bool | None = None,
    note: Callable[[str], None] = lambda message: None,
) -> ProbeResult:
    """Score every domain of the corpus with the causal LM in ``model_dir``; write its FEATURES.csv row.

    ``progress``: a rich bar on stderr (None = only on a terminal). ``note`` receives one-line remarks.
    """
    require_train_extra()
    if tokens < 2 or batch_size < 1 or (docs_per_domain is not None and docs_per_domain < 1):
        raise DataError("--tokens must be >= 2, --batch-size and --docs-per-domain >= 1")
    import jax.numpy as jnp

    from trainer_jax import enable_compile_cache
    from trainer_jax.data.tokenizer import check_ids_fit, load_tokenizer
    from trainer_jax.models.attention import choose_attention
    from trainer_jax.models.hf_import import load_causal_lm, read_model_dir

    for path in (out_path, scores_out):
        if path is not None:
            check_writable(path)  # an unwritable output is reported before any work
    enable_compile_cache()
    source = read_model_dir(model_dir)  # bad model dirs fail before data work
    context = source.config.max_position_embeddings
    if tokens > context:
        note(f"--tokens {tokens} exceeds the model's context of {context} tokens; longer documents are scored anyway")
    config = ProbeConfig(model_id or default_model_id(model_dir), tokens, docs_per_domain, batch_size, dtype)
    corpus_path, out_path = Path(corpus_path), Path(out_path)
    corpus = read_corpus(corpus_path, docs_per_domain)
    tok = load_tokenizer(model_dir)
    encoded: dict[str, list[list[int]]] = {}
    for domain, texts in corpus.items():
        encoded[domain] = [list(ids[:tokens]) for ids in tok(texts)["input_ids"]]  # (n,) ids, n <= N: tok(text)
        if all(len(ids) < 2 for ids in encoded[domain]):
            raise DataError(f"{corpus_path}: domain {domain!r} has no document of at least 2 tokens to score")

    check_ids_fit({i for ids in encoded.values() for doc in ids for i in doc}, source.config.vocab_size, model_dir)
    _read_features(out_path)  # broken output files are reported before the model runs
    if scores_out is not None:
        _read_scores_lines(Path(scores_out), None)
    key = {"model_id": config.model_id, "model_dir": str(Path(model_dir).resolve()), "tokens": tokens,
           "docs_per_domain": docs_per_domain, "dtype": dtype, "corpus_sha256": sha256(corpus_path)}
    sidecar = partial_path(out_path, config.model_id)
    done = {d: s for d, s in _load_partial(sidecar, key, note).items() if d in encoded}
    resumed = tuple(done)
    if resumed:
        note(f"resuming from {sidecar}: {len(resumed)} of {len(encoded)} domains already scored")
    todo = [d for d in encoded if d not in done]
    if todo:
        lm = load_causal_lm(model_dir, dtype=jnp.dtype(dtype))
        note(choose_attention(lm.cfg, jnp.dtype(dtype)).describe())
        scorer = make_scorer(lm)
        with _progress(progress) as bar:
            task = bar.add_task("", total=sum(len(encoded[d]) for d in todo))
            for domain in todo:
                bar.update(task, description=domain)
                done[domain] = _score_domain(scorer, domain, encoded[domain], batch_size,
                                             lambda k: bar.advance(task, k))
                _save_partial(sidecar, key, done)
    for domain in encoded:
        if done[domain].skipped:
            note(f"domain {domain!r}: skipped {done[domain].skipped} documents with fewer than 2 tokens")
    result = ProbeResult(config, str(out_path), tuple(done[d] for d in encoded), resumed)
    update_features_csv(out_path, config.model_id, result.feature_row())
    if scores_out is not None:
        update_scores_jsonl(scores_out, config.model_id, result.domains)
    sidecar.unlink(missing_ok=True)
    return result


def _score_domain(scorer, domain: str, docs: list[list[int]], batch_size: int, advance) -> DomainScores:
    """Scores of one domain's documents (those with >= 2 tokens), in corpus order."""
    keep = [i for i, ids in enumerate(docs) if len(ids) >= 2]
    advance(len(docs) - len(keep))
    scores = score_documents(scorer, [docs[i] for i in keep], batch_size=batch_size, advance=advance)
    if not np.all(np.isfinite(scores)):
        raise DataError(f"domain {domain!r}: the model produced non-finite log-probabilities; check its weights")
    return DomainScores(domain, tuple(float(s) for s in scores), tuple(len(docs[i]) for i in keep), tuple(keep),
                        len(docs) - len(keep))
