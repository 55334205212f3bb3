"""The ranking methods an artifact chooses among, per recipe and target, and how it chooses.

- ``basepick (LightGBM)``: ``predictor.models.model.RewardPredictor``.
- ``ridge``: linear in the standardised v2 scores and log params; its penalty is chosen by inner
  leave-lineage-out on the training rows (as the ``ridge`` baseline of ``basepick evaluate``).
- ``log params`` and ``mean leaderboard score``: rules. They order candidates by one input, larger
  first, whatever the labels say; a least-squares line only maps the input to RewardBench points,
  for intervals and for ``plan`` (a fitted slope below ``RULE_MIN_SLOPE`` is raised to it, so the
  order survives labels that do not follow the rule).

The choice (``choose``) serves the decision the tool is for — which few bases to train — so the
criterion is the mean regret of training the predicted top ``RUNS`` of random pools of ``POOL``
labelled bases, scored with leave-one-lineage-out predictions (a rule by its fixed order), and the
simplest method (the order of ``METHODS``) within one standard error of the best is chosen.
Spearman is reported but not used to choose: on the Bradley–Terry labels log params has the best
Spearman while its top picks are poor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from predictor.data import features as F
from predictor.data.dataset import out_of_fold
from predictor.errors import ArtifactError
from predictor.models import baselines as B
from predictor.models import metrics as M
from predictor.models.model import ModelConfig, Offset, RewardPredictor, design_matrix, with_presence

PREDICTOR = "basepick (LightGBM)"
RIDGE = "ridge"
RULES = {"mean leaderboard score": "mean_v2", "log params": "log_params"}  # rule → the input it orders by
METHODS = ("mean leaderboard score", "log params", RIDGE, PREDICTOR)  # simplest first: ties go left
POOL, RUNS, CRITERION_POOLS = 12, 3, 1000
RULE_MIN_SLOPE = 1e-6  # points per standard deviation: a rule whose line would be flat or falling keeps its order
CRITERION = (f"mean regret of training the predicted top {RUNS} of random pools of {POOL} (leave-lineage-out); "
             "the simplest method within one lineage-jackknife standard error of the best")


@dataclass
class LinearMethod:
    """A linear ranking method (ridge or a rule) in RewardBench points; same interface as RewardPredictor."""

    method: str
    offset: Offset  # names, standardisation, coefficients; points
    calibration_: dict | None = None

    @property
    def feature_names_in_(self) -> tuple[str, ...]:
        return self.offset.names

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """(N,) RewardBench points; a missing input counts as the training mean."""
        return np.clip(self.offset.predict(design_matrix(columns, self.offset.names)), 0.0, 100.0)

    def predict_members(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return self.predict(columns)[None, :]  # (1, N): a single member

    def contributions(self, columns: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
        return list(self.offset.names), self.offset.terms(design_matrix(columns, self.offset.names))

    def model_strings(self) -> list[str]:
        return []

    def state(self) -> dict:
        state = {"method": self.method, "offset": asdict(self.offset)}
        if self.calibration_ is not None:
            state["calibration"] = self.calibration_
        return state

    @classmethod
    def from_state(cls, state: dict) -> "LinearMethod":
        try:
            offset = dict(state["offset"])
            offset["names"] = tuple(offset["names"])
            return cls(state["method"], Offset(**offset), state.get("calibration"))
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"predictor artifact is corrupt or from an incompatible version: {exc}") from None


def method_name(model) -> str:
    return getattr(model, "method", PREDICTOR)


def inputs(model) -> list[str]:
    """The columns a fitted method reads, derived ones traced back (mean_v2 → the six v2 scores)."""
    names = list(model.feature_names_in_) + (list(model.offset_.names) if hasattr(model, "offset_") else [])
    out: list[str] = []
    for name in names:
        for raw in F.V2_SCORES if name == "mean_v2" else ("params_b",) if name == "log_params" else (name,):
            if raw not in out:
                out.append(raw)
    return out


def fit(name: str, ds, config: ModelConfig):
    """Fit method ``name`` on a labelled Dataset (predictor.data.dataset)."""
    if name == PREDICTOR:
        return RewardPredictor(with_presence(config, ds.columns)).fit(ds.columns, ds.y)
    if name == RIDGE:
        alpha = B.ridge_alpha(ds)
        return LinearMethod(RIDGE, Offset.fit(design_matrix(ds.columns, B.LINEAR_FEATURES), ds.y, B.LINEAR_FEATURES, alpha))
    feature = RULES[name]
    offset = Offset.fit(design_matrix(ds.columns, (feature,)), ds.y, (feature,), 0.0)
    offset.coef = [max(c, RULE_MIN_SLOPE) for c in offset.coef]  # a rule ranks larger first, whatever the fit
    return LinearMethod(name, offset)


def fit_predict(name: str, config: ModelConfig):
    """``(train, test) -> predictions`` for predictor.data.dataset.out_of_fold."""
    return lambda train, test: fit(name, train, config).predict(test.columns)


def rule_order(name: str, ds, config: ModelConfig) -> np.ndarray:
    """A rule's scores on ``ds``: its line fitted on ``ds`` itself (monotone, so the order is the rule's)."""
    return fit(name, ds, config).predict(ds.columns)


def decision_regret(pred: np.ndarray, y: np.ndarray, seed: int = 0, pool: int = POOL, runs: int = RUNS,
                    n_pools: int = CRITERION_POOLS) -> tuple[float, float]:
    """(mean regret, share within 1 point) of training the top ``runs`` by ``pred`` in random pools."""
    pred, y = np.asarray(pred, float), np.asarray(y, float)
    pool = min(pool, len(y) - 1)
    rng = np.random.default_rng(seed)
    pools = np.argsort(rng.random((n_pools, len(y))), axis=1)[:, :pool]  # (P, pool) distinct rows per pool
    top = np.take_along_axis(pools, np.argsort(-pred[pools], axis=1, kind="stable")[:, :runs], axis=1)
    regret = y[pools].max(axis=1) - y[top].max(axis=1)  # (P,) points
    return float(regret.mean()), float(np.mean(regret <= 1.0 + 1e-9))


@dataclass
class Choice:
    name: str  # the chosen method
    figures: dict[str, dict[str, float]]  # method → its out-of-fold figures (the criterion first)
    oof: dict[str, np.ndarray]  # method → (N,) leave-lineage-out predictions, points


def choose(ds, config: ModelConfig, *, seed: int = 0, oof: dict[str, np.ndarray] | None = None) -> Choice:
    """Choose the ranking method for one recipe and target by leave-lineage-out (see the module doc).

    One-standard-error rule: the simplest method whose criterion is within one standard error of the
    best one's. The standard error of each difference to the best is a delete-one-lineage jackknife
    (the criterion recomputed without each lineage): with ~40 labelled bases in ~9 lineages the
    criterion is noisy, and a method must beat a simpler one by more than that noise to be chosen.
    ``oof`` may carry leave-lineage-out predictions already computed (by predictor.data.dataset.out_of_fold).
    """
    oof = dict(oof or {})
    figures, orders = {}, {}
    for name in METHODS:
        if name not in oof:
            oof[name] = out_of_fold(ds, fit_predict(name, config), "lineage")
        orders[name] = rule_order(name, ds, config) if name in RULES else oof[name]
        regret, within = decision_regret(orders[name], ds.y, seed)
        figures[name] = {"decision_regret": round(regret, 4), "within_1pt": round(within, 4),
                         "spearman": round(M.spearman(orders[name], ds.y), 4), "mae": round(M.mae(oof[name], ds.y), 4)}
    best = min(METHODS, key=lambda n: figures[n]["decision_regret"])
    lineages = np.unique(ds.lineage)
    if len(lineages) > 2:
        without = {name: np.array([decision_regret(orders[name][ds.lineage != g], ds.y[ds.lineage != g], seed)[0]
                                   for g in lineages]) for name in METHODS}  # (G,) each
        for name in METHODS:
            diff = without[name] - without[best]
            se = float(np.sqrt((len(diff) - 1) / len(diff) * np.sum((diff - diff.mean()) ** 2)))
            figures[name]["se_vs_best"] = round(se, 4)
    chosen = next(n for n in METHODS
                  if figures[n]["decision_regret"] - figures[best]["decision_regret"] <= figures[n].get("se_vs_best", 0.0))
    return Choice(chosen, figures, oof)
