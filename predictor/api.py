"""basepick from Python: ``rank``, ``plan``, ``fit`` and ``evaluate`` on a CSV path or a list of dicts,
returning plain data — the dicts ``--format json`` prints, plus ``notes`` (what the CLI writes to stderr).

    from predictor import api
    api.rank([{"model_id": "Qwen/Qwen2.5-7B-Instruct"}, {"model_id": "google/gemma-2-9b-it"}], top=1)
    api.plan("pool.csv", budget=2, labels="measured.csv")   # which bases to train next
    api.fit("my_labels.csv", out="my_predictor")       # shipped labels + mine, like `basepick fit`
    api.evaluate(labels=[{"model_id": ..., "recipe": "regression", ...}, ...], bootstrap=200)

The CLI's commands call ``ranking``, ``planning``, ``fit`` and ``evaluation`` here and only render the
result, so the two take the same code path. Bad input raises ``predictor.errors.BasepickError``
(``DataError``, ``ArtifactError``) carrying the one-line message the CLI prints after ``Error:``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Callable

from predictor.errors import DataError

Note = Callable[[str], None]


def _ignore(message: str) -> None:
    pass


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise DataError(message)


def _require_seed(seed) -> None:
    from predictor.jobs.options import SEED_MAX  # the CLI's --seed bound (imported here: it loads click)

    _require(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= SEED_MAX,
             f"seed {seed!r} is not an integer in [0, {SEED_MAX}]")


def _sources(tables) -> list:
    """One table (a path, or a list of dicts) or several (a list of paths or of lists of dicts) → a list."""
    if tables is None:
        return []
    if isinstance(tables, (str, Path)):
        return [tables]
    tables = list(tables)
    if tables and all(isinstance(t, Mapping) for t in tables):
        return [tables]
    return tables


# --------------------------------------------------------------------------------------------------
# rank


def ranking(candidates=None, *, pool: str | None = None, recipe: str = "regression", target: str = "score",
            predictor: str | Path | None = None, top: int | None = None, max_params: float | None = None,
            weights: str | dict | None = None, level: float = 0.8, top_k: int = 3, scale: str = "auto",
            strict: bool = False, note: Note = _ignore):
    """Rank candidates (CSV path or list of dicts with ``model_id`` and optional feature columns) or the
    leaderboard pool; returns a ``predictor.jobs.rank.Ranking``. Notes (scale decisions, caveats) go to ``note``.

    Candidates without any input of the ranking method are not ranked but returned in ``unrankable``, each
    with the command that produces its features (into the candidates file, when it is one); ``strict``
    refuses them instead (DataError)."""
    from predictor.data import candidates as C
    from predictor.data.scale import SCALES
    from predictor.data.shipped import load_snapshot, shipped_predictor_dir
    from predictor.jobs.rank import parse_weights
    from predictor.jobs.rank import rank as rank_candidates
    from predictor.models import artifact

    _require((candidates is None) != (pool is None), "give either candidates (a CSV path or a list of dicts) or pool")
    _require(pool in (None, "leaderboard"), f"pool {pool!r}: the only pool is 'leaderboard'")
    _require(scale in SCALES, f"scale {scale!r} is not one of {', '.join(SCALES)}")
    _require(0.5 <= level <= 0.99, f"interval level {level!r} is not in [0.5, 0.99]")
    _require(top_k >= 1 and (top is None or top >= 1), "top and top_k must be at least 1")
    _require(max_params is None or max_params > 0, f"max_params {max_params!r} must be above 0")
    _require(weights is None or target == "score", "weights combine the sections; they cannot be used with a target")
    if isinstance(weights, Mapping):
        weights = ",".join(f"{k}={v}" for k, v in weights.items())
    section_weights = parse_weights(weights) if weights is not None else None
    bundle = artifact.load(predictor or shipped_predictor_dir())
    snapshot = load_snapshot()
    if pool:
        table = C.ids_only(snapshot.v2_ids, snapshot)
    else:
        table = C.read_candidates(candidates, snapshot, scale=scale, note=note, allow_unknown=True)
    features_file = str(candidates) if isinstance(candidates, (str, Path)) else "features.csv"
    result = rank_candidates(table, bundle, recipe=recipe, target=target, weights=section_weights, top=top,
                             max_params=max_params, level=level, top_k=top_k, snapshot=snapshot,
                             features_file=features_file)
    if strict:
        result.refuse_unrankable()
    for message in result.notes:
        note(message)
    return result


def rank(candidates=None, **options) -> dict:
    """``ranking`` as plain data: the JSON of ``basepick rank --format json`` plus ``notes``."""
    notes: list[str] = []
    result = ranking(candidates, note=notes.append, **options)
    return {**result.to_json(), "notes": notes}


# --------------------------------------------------------------------------------------------------
# fit


def fit(labels=None, *, out: str | Path, shipped_labels: bool = True, features=None, seed: int = 0,
        allow_partial: bool = False, on_duplicate: str = "error", note: Note = _ignore) -> dict:
    """Fit a predictor on the shipped labels (unless ``shipped_labels=False``) plus ``labels`` (CSV paths
    or lists of dicts), write it atomically to ``out`` and return its summary (``basepick inspect``'s)."""
    from predictor.data.shipped import LABELS_FILE, benchmarks_dir, shipped_predictor_dir
    from predictor.jobs.fit import fit_bundle
    from predictor.models import artifact

    sources = _sources(labels)
    if shipped_labels:
        sources.insert(0, benchmarks_dir() / LABELS_FILE)
    _require(bool(sources), "no labels: give label tables, or keep the shipped labels")
    _require_seed(seed)
    artifact.check_destination(out)
    bundle = fit_bundle(sources, feature_sources=_sources(features), seed=seed, allow_partial=allow_partial,
                        on_duplicate=on_duplicate, note=note)
    parent = artifact.previous_metadata(shipped_predictor_dir()).get("version") if shipped_labels else None
    artifact.save(bundle, out, parent=parent)
    note(f"wrote {out} ({len(bundle.models)} models: {', '.join(f'{r}/{t}' for r, t in sorted(bundle.models))})")
    return artifact.summary(out)


# --------------------------------------------------------------------------------------------------
# evaluate


def evaluation(labels=None, *, features=None, recipe: str = "regression", target: str = "score",
               split: str = "lineage", level: float = 0.8, bootstrap: int = 1000, baselines: bool = True,
               allow_partial: bool = False, on_duplicate: str = "error", budget: int | None = None,
               pool_size: int = 12, pools: int = 40, calibration: bool = False, seed: int = 0, note: Note = _ignore):
    """Out-of-fold evaluation of the predictor and the baselines on ``labels`` (default: the shipped
    ones); returns a ``predictor.evals.evaluate.Evaluation``. ``budget``: also simulate training 1..budget
    bases of ``pools`` random pools of ``pool_size`` labelled bases, policy by policy (predictor.evals.budget).
    ``calibration``: also check rank's and plan's stated uncertainty on such pools (predictor.evals.calibration).
    ``seed``: of the pools, the bootstrap and the random split."""
    from predictor.data.dataset import SPLITS
    from predictor.data.shipped import LABELS_FILE, benchmarks_dir
    from predictor.evals.evaluate import evaluate

    _require(split in SPLITS, f"split {split!r} is not one of {', '.join(SPLITS)}")
    _require(0.5 <= level <= 0.99, f"interval level {level!r} is not in [0.5, 0.99]")
    _require(bootstrap >= 0, f"bootstrap {bootstrap!r} must be at least 0")
    _require(budget is None or budget >= 1, f"budget {budget!r} must be at least 1")
    _require(pool_size >= 2 and pools >= 1, "pool_size must be at least 2 and pools at least 1")
    _require_seed(seed)
    sources = _sources(labels) or [benchmarks_dir() / LABELS_FILE]
    return evaluate(sources, recipe=recipe, target=target, split=split, level=level, n_boot=bootstrap,
                    with_baselines=baselines, feature_sources=_sources(features), allow_partial=allow_partial,
                    on_duplicate=on_duplicate, budget=budget, pool_size=pool_size, n_pools=pools,
                    calibration=calibration, seed=seed, note=note)


def evaluate(labels=None, **options) -> dict:
    """``evaluation`` as plain data: the JSON of ``basepick evaluate --format json`` plus ``notes``."""
    notes: list[str] = []
    result = evaluation(labels, note=notes.append, **options)
    return {**result.to_json(), "notes": notes}


# --------------------------------------------------------------------------------------------------
# plan


def planning(candidates, *, budget: int, recipe: str = "regression", labels=None, confidence: float = 0.9,
             predictor: str | Path | None = None, allow_partial: bool = False, on_duplicate: str = "error",
             scale: str = "auto", seed: int = 0, note: Note = _ignore):
    """Propose the next ``budget`` bases to train among ``candidates`` (CSV path or list of dicts, with an
    optional ``lineage`` column), given measured ``labels`` (label tables); returns a ``predictor.jobs.plan.Plan``."""
    from predictor.data.scale import SCALES
    from predictor.data.shipped import load_snapshot, shipped_predictor_dir
    from predictor.jobs.plan import plan as run_plan
    from predictor.models import artifact

    _require(scale in SCALES, f"scale {scale!r} is not one of {', '.join(SCALES)}")
    _require(0.5 <= confidence <= 0.999, f"confidence {confidence!r} is not in [0.5, 0.999]")
    _require_seed(seed)
    bundle = artifact.load(predictor or shipped_predictor_dir())
    result = run_plan(candidates, bundle, load_snapshot(), budget=budget, recipe=recipe, label_sources=_sources(labels),
                      confidence=confidence, allow_partial=allow_partial, on_duplicate=on_duplicate, scale=scale,
                      seed=seed, note=note)
    for message in result.notes:
        note(message)
    return result


def plan(candidates, **options) -> dict:
    """``planning`` as plain data: the JSON of ``basepick plan --format json`` plus ``notes``."""
    notes: list[str] = []
    result = planning(candidates, note=notes.append, **options)
    return {**result.to_json(), "notes": notes}
