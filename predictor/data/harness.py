"""lm-evaluation-harness results files: how each run was made, and one model's runs merged.

Input: the ``results_<timestamp>.json`` files ``lm_eval --output_path DIR`` writes (one folder per
model, ``DIR/<org>__<name>/results_<ISO time>.json``; lm_eval/loggers/evaluation_tracker.py). Each
holds ``results`` (task → ``"<metric>,<filter>"`` → value; group aggregates too, which newer versions
repeat under ``groups``), ``configs``, ``versions``, ``n-shot``, ``n-samples``, ``config`` (``model``
= the backend, ``model_args``, ``batch_size``, ``limit``), ``model_name``, ``chat_template`` and
``fewshot_as_multiturn`` (the template applied, or null), ``git_hash`` and, from lm-eval 0.4.8 on,
``lm_eval_version`` (lm_eval/result_schema.py). Results of lm-eval before 0.4 name metrics without a
filter (``"acc"``, not ``"acc,none"``) and are refused.

A model's files are merged task by task, later files (by name: harness timestamps) winning. Refused,
one line each: two runs of different lm-eval versions for one benchmark (which one counts is not
ours to guess), a partial run (``config.limit`` set, or fewer documents than the task has: the
leaderboard scored every document), and ``--model-id`` naming another model than the files do.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from predictor.errors import DataError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VERSION = re.compile(r"^\d+\.\d+")
_NOT_METRICS = {"alias", "samples", "sample_len", "sample_count", "name"}  # per-task keys that are not scores
V1_TASKS = {"arc_challenge": "arc", "hellaswag": "hellaswag", "mmlu": "mmlu", "truthfulqa_mc2": "truthfulqa",
            "winogrande": "winogrande", "gsm8k": "gsm8k"}
V2_PREFIXES = (("leaderboard_ifeval", "ifeval"), ("leaderboard_bbh", "bbh"), ("leaderboard_math", "math_lvl5"),
               ("leaderboard_gpqa", "gpqa"), ("leaderboard_musr", "musr"), ("leaderboard_mmlu_pro", "mmlu_pro"))


def benchmark_of(task: str) -> str | None:
    """The canonical benchmark a harness task (or group) belongs to, or None (other tasks, the group
    ``leaderboard`` itself)."""
    for prefix, name in V2_PREFIXES:
        if task == prefix or task.startswith(prefix + "_"):
            return name
    if task.startswith("mmlu_"):
        return "mmlu"
    return V1_TASKS.get(task)


@dataclass(frozen=True)
class Run:
    """One results file: its task results and how lm-eval was run."""

    path: Path  # the results file
    model: str  # the evaluated model as the file names it ("" when it names none)
    lm_eval: str  # lm_eval_version ("0.4.12"), else "git <hash>" of the harness checkout, else "unknown"
    backend: str  # config.model: "hf", "vllm", ... ("" when not recorded)
    dtype: str  # dtype= of config.model_args, else config.model_dtype ("" when not recorded)
    chat_template: bool  # a chat template was applied (--apply_chat_template)
    fewshot_as_multiturn: bool  # few-shot examples given as chat turns (--fewshot_as_multiturn)
    n_shot: dict[str, object]  # task → number of few-shot examples, as recorded
    versions: dict[str, str]  # task → task version ("1.0"), "" when not recorded
    limit: object  # config.limit: None for a full run
    tasks: dict[str, dict]  # task or group → {"<metric>,<filter>": value}
    n_samples: dict[str, tuple[float, float]]  # task → (documents in the task, documents evaluated)
    date: float | None = None  # run start, unix seconds

    def partial(self) -> str | None:
        """Why this is a partial run (a --limit, or fewer documents than a task has), or None."""
        if self.limit not in (None, 0):  # lm-eval reads 1.0 as one document, 0.5 as half
            return f"config.limit is {str(self.limit)[:20]}"
        short = sorted(t for t, (total, used) in self.n_samples.items() if used < total)
        if short:
            total, used = self.n_samples[short[0]]
            return f"{short[0]} evaluated {used:g} of its {total:g} documents"
        return None


@dataclass
class ModelResults:
    """One model's runs merged task by task (later files win), with where each task came from."""

    model_id: str
    runs: list[Run]  # the files read for this model, in order
    tasks: dict[str, dict] = field(default_factory=dict)  # task → metrics
    task_run: dict[str, Run] = field(default_factory=dict)  # task → the run it came from
    notes: list[str] = field(default_factory=list)  # for stderr

    def where(self, task: str) -> Path:
        return self.task_run[task].path

    def metric(self, task: str, key: str) -> float | None:
        """``results[task][key]`` as an accuracy in [0, 1]; None when absent; bad values are an error."""
        entry = self.tasks.get(task)
        if entry is None or key not in entry:
            return None
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise DataError(
                f"{self.where(task)}: results.{task}[{key!r}] is {str(value)[:40]!r}, not an accuracy in [0, 1]; "
                "re-run the task or remove the file"
            )
        return float(value)

    def effective(self, task: str) -> float | None:
        """Documents evaluated for ``task`` (n-samples), or None when not recorded."""
        run = self.task_run.get(task)
        counts = run.n_samples.get(task) if run else None
        return counts[1] if counts else None

    def runs_of(self, benchmark: str) -> list[Run]:
        """The runs whose tasks make up ``benchmark`` here (usually one)."""
        runs = [r for t, r in self.task_run.items() if benchmark_of(t) == benchmark]
        return list({id(r): r for r in runs}.values())


# --------------------------------------------------------------------------------------------------
# Reading one file


def load_json(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise DataError(f"{path}: file is empty; expected an lm-evaluation-harness results JSON")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); expected an lm-evaluation-harness results JSON") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = getattr(exc, "msg", "nested too deeply")
        raise DataError(f"{path}: not valid JSON ({reason}); expected an lm-evaluation-harness results JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise DataError(f"{path}: not an lm-evaluation-harness results file (no 'results' object)")
    return doc


def _dict(doc: dict, key: str) -> dict:
    """``doc[key]`` when it is an object, else {} (sections other tools may leave out or fill oddly)."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def model_name(doc: dict) -> str:
    """The evaluated model as lm_eval names it: ``model_name``, else ``pretrained=`` etc. in model_args."""
    name = _text(doc.get("model_name"))
    args = _dict(doc, "config").get("model_args")
    if not name and isinstance(args, dict):
        name = next((str(args[k]) for k in ("peft", "delta", "pretrained", "model", "path", "engine") if args.get(k)), "")
    elif not name and isinstance(args, str):
        for prefix in ("peft=", "delta=", "pretrained=", "model=", "path=", "engine="):
            if prefix in args:
                name = args.split(prefix, 1)[1].split(",", 1)[0]
                break
    return name.strip()


def _model_arg(args, key: str) -> str:
    if isinstance(args, dict):
        return _text(str(args.get(key, "")))
    if isinstance(args, str):
        for part in args.split(","):
            k, sep, v = part.partition("=")
            if sep and k.strip() == key:
                return v.strip()
    return ""


def _version(value) -> str:
    """A task version as text: numbers as floats ("1.0", "0.1"), other text as it is, None as ""."""
    if isinstance(value, bool) or value is None:
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _text(str(value))[:20]
    return str(number) if math.isfinite(number) else ""


def _lm_eval(doc: dict) -> str:
    version = _text(doc.get("lm_eval_version"))
    if _VERSION.match(version):  # on failure lm_eval stores the exception's text here
        return version[:20]
    git = _text(doc.get("git_hash"))
    return f"git {git[:12]}" if git and not _CONTROL.search(git) else "unknown"


def _refuse_pre_0_4(doc: dict, path: Path) -> None:
    """lm-eval < 0.4 writes ``{"acc": ...}`` where 0.4 writes ``{"acc,none": ...}``: refuse it, saying so."""
    bare = [(task, key) for task, entry in doc["results"].items() if isinstance(entry, dict)
            for key, value in entry.items()
            if key not in _NOT_METRICS and "," not in key and isinstance(value, (int, float)) and not isinstance(value, bool)]
    filtered = any("," in key for entry in doc["results"].values() if isinstance(entry, dict) for key in entry)
    if bare and not filtered:
        task, key = bare[0]
        raise DataError(
            f"{path}: lm-evaluation-harness results older than 0.4 (metric keys without a filter, e.g. {key!r} in "
            f"results.{task}); basepick reads lm-eval 0.4 or later: re-run with lm-eval >= 0.4.9 (examples/lm-eval/)"
        )


def read_run(path: Path) -> Run:
    """One results file as a Run (unreadable or pre-0.4 files are an error naming the file)."""
    doc = load_json(path)
    _refuse_pre_0_4(doc, path)
    config = _dict(doc, "config")
    tasks = {t: e for t, e in {**_dict(doc, "groups"), **doc["results"]}.items() if isinstance(e, dict)}
    n_samples = {}
    for task, entry in _dict(doc, "n-samples").items():
        if isinstance(entry, dict) and all(isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool)
                                           for k in ("original", "effective")):
            n_samples[task] = (float(entry["original"]), float(entry["effective"]))
    date = doc.get("date")
    return Run(
        path=path,
        model=model_name(doc),
        lm_eval=_lm_eval(doc),
        backend=_text(config.get("model"))[:40],
        dtype=(_model_arg(config.get("model_args"), "dtype") or _text(config.get("model_dtype")).removeprefix("torch."))[:20],
        chat_template=bool(_text(doc.get("chat_template")) or _text(doc.get("chat_template_sha"))),
        fewshot_as_multiturn=doc.get("fewshot_as_multiturn") is True,
        n_shot=dict(_dict(doc, "n-shot")),
        versions={task: _version(v) for task, v in _dict(doc, "versions").items()},
        limit=config.get("limit"),
        tasks=tasks,
        n_samples=n_samples,
        date=float(date) if isinstance(date, (int, float)) and not isinstance(date, bool) and math.isfinite(date) else None,
    )


# --------------------------------------------------------------------------------------------------
# One model's files


def check_model_id(model_id: str, where: str) -> str:
    if not model_id or _CONTROL.search(model_id) or len(model_id) > 200:
        raise DataError(f"{where}: model id {model_id[:40]!r} is not a Hugging Face model id; pass --model-id ORG/NAME")
    if is_local_path(model_id):
        raise DataError(f"{where}: the model was loaded from a local path ({model_id[:60]}); pass --model-id ORG/NAME")
    return model_id


def is_local_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or "\\" in name


def find_results(path: Path) -> list[Path]:
    """``results*.json`` under a directory (sorted: harness timestamps sort chronologically), or the file."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    files = sorted(p for p in path.rglob("results*.json") if p.is_file())
    if not files:
        raise DataError(f"{path}: no lm-evaluation-harness results_*.json files in this folder or below it")
    return files


def read_models(path: str | Path, *, model_id: str | None = None) -> list[ModelResults]:
    """Every results file under ``path``, grouped by model and merged (see the module's rules)."""
    path = Path(path)
    runs = [read_run(f) for f in find_results(path)]
    if model_id is None:
        groups: dict[str, list[Run]] = {}
        for run in runs:
            if not run.model:
                raise DataError(f"{run.path}: names no model (no model_name, no pretrained= in config.model_args); "
                                "pass --model-id")
            groups.setdefault(run.model, []).append(run)
    else:
        names = sorted({r.model for r in runs if r.model})
        hub = [n for n in names if not is_local_path(n)]
        if len({n.lower() for n in names}) > 1:
            raise DataError(f"{path}: --model-id names one model but the files hold several ({', '.join(names[:3])})")
        if hub and hub[0].lower() != model_id.lower():
            first = next(r for r in runs if r.model == hub[0])
            raise DataError(f"{first.path}: the results are for {hub[0]!r}, not --model-id {model_id!r}; leave out "
                            "--model-id (it is for runs that loaded a local path) or point at that model's results")
        groups = {model_id: runs}
    return sorted((merge(name, group) for name, group in groups.items()), key=lambda m: m.model_id)


def merge(model_id: str, runs: list[Run]) -> ModelResults:
    """One model's runs merged task by task; refuses partial runs and benchmarks run by two lm-eval versions."""
    check_model_id(model_id, str(runs[0].path))
    for run in runs:
        if (why := run.partial()) is not None:
            raise DataError(f"{run.path}: a partial run ({why}): the leaderboard's scores cover every document; "
                            "re-run the task group without --limit")
    merged = ModelResults(model_id, runs)
    by_benchmark: dict[str, list[Run]] = {}
    for run in runs:
        for task, entry in run.tasks.items():
            merged.tasks[task], merged.task_run[task] = entry, run
            if (name := benchmark_of(task)) is not None and run not in by_benchmark.setdefault(name, []):
                by_benchmark[name].append(run)
    for name, overlap in by_benchmark.items():
        if len({r.lm_eval for r in overlap}) > 1:
            a, b = overlap[0], next(r for r in overlap if r.lm_eval != overlap[0].lm_eval)
            raise DataError(f"{b.path}: {model_id} has {name} results from lm-eval {a.lm_eval} ({a.path.name}) and "
                            f"{b.lm_eval} ({b.path.name}); scores of different harness versions are not interchangeable: "
                            "keep one run per benchmark (move the other file away)")
        if len(overlap) > 1:
            merged.notes.append(f"{name}: results in {len(overlap)} files of one lm-eval version; the latest "
                                f"({overlap[-1].path.name}) wins task by task")
    versions = list(dict.fromkeys(r.lm_eval for r in runs if any(benchmark_of(t) for t in r.tasks)))
    if len(versions) > 1:
        merged.notes.append(f"its benchmarks come from lm-eval {' and '.join(versions)} (one version per benchmark)")
    return merged
