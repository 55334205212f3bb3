"""The estimator: a ridge offset plus a bag of small monotone LightGBM boosters on the residual.

Why this shape (measured on the 40 seed bases, leave-one-lineage-out; see benchmarks/RESULTS.md):
- With ~40 rows, LightGBM's defaults (min_data_in_leaf=20) make no split at all and predict a
  constant. We set small leaves and bins, and ``fit`` refuses a model whose trees never split.
- Trees cannot extrapolate, and users rank 30-70B models while labels stop at 10.3B. A ridge offset in
  the mean leaderboard score and log(params) carries the trend (and extrapolates, linearly in
  log params); the boosters only learn a correction on top of it, through ``init_score``.
- Seed bagging (row subsampling, one seed each) gives an ensemble: its mean is the prediction and its
  members give the probability of landing in the top k.

Follows the scikit-learn estimator contract without depending on scikit-learn: ``__init__`` stores
parameters, ``fit`` returns self and sets ``boosters_`` and ``feature_names_in_``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import lightgbm as lgb
import numpy as np

from predictor.data import features as F
from predictor.errors import ArtifactError, DataError

DEFAULT_FEATURES = F.V2_SCORES + ("mean_v2", "log_params")


@dataclass(frozen=True)
class ModelConfig:
    features: tuple[str, ...] = DEFAULT_FEATURES  # columns the boosters see, in this order
    offset_features: tuple[str, ...] = ("mean_v2", "log_params")  # ridge offset inputs (extrapolate)
    offset_l2: float = 10.0  # ridge penalty on standardised offset coefficients
    increasing: tuple[str, ...] = F.V2_SCORES + ("mean_v2",)  # monotone +1 constraints
    num_boost_round: int = 20  # per booster; more rounds overfit 40 rows (measured)
    learning_rate: float = 0.02
    num_leaves: int = 4
    min_data_in_leaf: int = 3  # LightGBM's default 20 makes no split on ~40 rows
    lambda_l2: float = 1.0
    bagging_fraction: float = 0.8  # row subsample per booster; 1.0 makes the bag identical
    n_bags: int = 8  # boosters in the ensemble, seeds seed..seed+n_bags-1
    seed: int = 0
    logit_target: bool = True  # fit logit(points/100): predictions saturate below 100 instead of passing it

    def lgb_params(self, seed: int) -> dict:
        return {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "min_sum_hessian_in_leaf": 1e-3,
            "lambda_l2": self.lambda_l2,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1.0 else 0,
            "monotone_constraints": [1 if name in self.increasing else 0 for name in self.features],
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,  # tiny data: threads cost more than they give, and 1 is reproducible
            "verbosity": -1,
        }


DATASET_PARAMS = {"min_data_in_bin": 1, "max_bin": 63, "verbosity": -1, "feature_pre_filter": False}


@dataclass
class Offset:
    """Ridge regression on standardised inputs; a missing input counts as its training mean."""

    names: tuple[str, ...]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, names: tuple[str, ...], l2: float) -> "Offset":
        mean, scale = nan_stats(X)
        Z = np.nan_to_num((X - mean) / scale)  # (N, K) standardised, missing → 0
        A = np.c_[np.ones(len(Z)), Z]  # (N, 1+K)
        penalty = l2 * np.diag([0.0] + [1.0] * Z.shape[1])  # intercept not penalised
        w = np.linalg.solve(A.T @ A + penalty, A.T @ y)
        return cls(names, mean.tolist(), scale.tolist(), w[1:].tolist(), float(w[0]))

    def terms(self, X: np.ndarray) -> np.ndarray:
        """(N, K) each input's additive contribution, points."""
        Z = np.nan_to_num((X - np.asarray(self.mean)) / np.asarray(self.scale))
        return Z * np.asarray(self.coef)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.intercept + self.terms(X).sum(axis=1)


def nan_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations ignoring NaN; an all-missing or constant column gets (0, 1)."""
    known = ~np.isnan(X)
    count = known.sum(axis=0)  # (K,)
    filled = np.where(known, X, 0.0)
    mean = np.divide(filled.sum(axis=0), count, out=np.zeros(X.shape[1]), where=count > 0)
    var = np.divide((np.where(known, X - mean, 0.0) ** 2).sum(axis=0), count, out=np.zeros(X.shape[1]), where=count > 0)
    scale = np.sqrt(var)
    scale[~(scale > 0)] = 1.0
    return mean, scale


def with_presence(config: ModelConfig, columns: dict[str, np.ndarray]) -> ModelConfig:
    """``config`` plus every presence_<domain> column known for at least one training row."""
    extra = tuple(sorted(
        name for name, col in columns.items()
        if F.is_presence(name) and name not in config.features and not np.isnan(col).all()
    ))
    return replace(config, features=config.features + extra) if extra else config


def design_matrix(columns: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """(N, F) float64 in the given feature order; absent columns are all-NaN."""
    n = len(next(iter(columns.values())))
    return np.stack([columns.get(name, np.full(n, np.nan)) for name in names], axis=1)


@dataclass
class RewardPredictor:
    config: ModelConfig = field(default_factory=ModelConfig)

    def fit(self, columns: dict[str, np.ndarray], y: np.ndarray) -> "RewardPredictor":
        """Fit on feature columns (name → (N,)) and targets y (N,) in RewardBench points."""
        cfg = self.config
        y = np.asarray(y, dtype=float)
        if y.ndim != 1 or len(y) < 2 * cfg.min_data_in_leaf:
            raise DataError(f"need at least {2 * cfg.min_data_in_leaf} labelled models to fit, got {len(y)}; add labels")
        if np.isnan(y).any():
            raise DataError("labels contain missing targets")
        if np.ptp(y) == 0:
            raise DataError(f"all {len(y)} labels to fit give the same score ({y[0]:g} points): there is no order to "
                            "learn from them; check the label files (a copied value?) or add labels that differ")
        self.feature_names_in_ = cfg.features
        y = self._to_fit_scale(y)
        missing = [name for name in cfg.features if name not in columns]
        if missing:
            raise DataError(f"no column for feature(s) {', '.join(missing)} in the training table")
        self.offset_ = Offset.fit(design_matrix(columns, cfg.offset_features), y, cfg.offset_features, cfg.offset_l2)
        X = design_matrix(columns, cfg.features)  # (N, F)
        base = self.offset_.predict(design_matrix(columns, cfg.offset_features))  # (N,) fit scale
        # one binned Dataset serves every member; each member subsamples rows with its own seed
        dataset = lgb.Dataset(X, y, init_score=base, feature_name=list(cfg.features), params=DATASET_PARAMS)
        self.boosters_ = [lgb.train(cfg.lgb_params(cfg.seed + k), dataset, cfg.num_boost_round) for k in range(cfg.n_bags)]
        if not any(_has_split(b) for b in self.boosters_):
            raise DataError(
                f"the boosters made no split on {len(y)} labelled rows: the model would predict a constant, because "
                "the features barely vary between the labelled bases; add labelled bases that differ more"
            )
        return self

    # ---- prediction ------------------------------------------------------------------------------

    def _to_fit_scale(self, points: np.ndarray) -> np.ndarray:
        if not self.config.logit_target:
            return points
        p = np.clip(points, 0.5, 99.5) / 100.0
        return np.log(p / (1.0 - p))  # logit

    def _to_points(self, z: np.ndarray) -> np.ndarray:
        return 100.0 / (1.0 + np.exp(-z)) if self.config.logit_target else z

    def _raw_members(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        X = design_matrix(columns, self.feature_names_in_)
        base = self.offset_.predict(design_matrix(columns, self.offset_.names))
        # num_threads=1: on tiny inputs OpenMP start-up costs ~40x the prediction itself (measured)
        return np.stack([base + b.predict(X, num_threads=1) for b in self.boosters_])  # (n_bags, N) fit scale

    def predict_members(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """(n_bags, N) each ensemble member's prediction, points."""
        return self._to_points(self._raw_members(columns))

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """(N,) predicted RewardBench points (the ensemble's mean on the fit scale, mapped to points)."""
        return self._to_points(self._raw_members(columns).mean(axis=0))

    def contributions(self, columns: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
        """Per-feature contributions (N, F') around the training mean, in points.

        Offset terms and LightGBM ``pred_contrib`` (ensemble mean) are added per feature on the fit
        scale, where they and the expected value sum exactly to the prediction; with the logit target
        they are then converted to points by the local slope at each prediction (a linearisation).
        """
        names = list(dict.fromkeys(self.feature_names_in_ + self.offset_.names))
        out = np.zeros((len(next(iter(columns.values()))), len(names)))
        offset_terms = self.offset_.terms(design_matrix(columns, self.offset_.names))
        for j, name in enumerate(self.offset_.names):
            out[:, names.index(name)] += offset_terms[:, j]
        X = design_matrix(columns, self.feature_names_in_)
        contrib = np.mean([b.predict(X, pred_contrib=True, num_threads=1) for b in self.boosters_], axis=0)  # (N, F+1)
        for j, name in enumerate(self.feature_names_in_):
            out[:, names.index(name)] += contrib[:, j]
        if self.config.logit_target:
            share = self.predict(columns) / 100.0
            out *= (100.0 * share * (1.0 - share))[:, None]  # d points / d logit at the prediction
        return names, out

    # ---- serialisation (text only, no pickle) ----------------------------------------------------

    def model_strings(self) -> list[str]:
        return [b.model_to_string() for b in self.boosters_]

    def state(self) -> dict:
        state = {"config": _config_to_json(self.config), "offset": asdict(self.offset_)}
        if getattr(self, "calibration_", None) is not None:
            state["calibration"] = self.calibration_
        return state

    @classmethod
    def from_state(cls, state: dict, model_strings: list[str]) -> "RewardPredictor":
        try:
            config = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()})
            offset = state["offset"]
            offset["names"] = tuple(offset["names"])
            self = cls(config)
            self.offset_ = Offset(**offset)
            self.feature_names_in_ = config.features
            self.boosters_ = [lgb.Booster(model_str=s) for s in model_strings]
            self.calibration_ = state.get("calibration")
        except (KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as exc:
            raise ArtifactError(f"predictor artifact is corrupt or from an incompatible version: {exc}") from None
        if list(self.boosters_[0].feature_name()) != list(config.features):
            raise ArtifactError("predictor artifact's model files do not match its metadata's feature list")
        return self


def _has_split(booster: lgb.Booster) -> bool:
    return any(tree["tree_structure"].get("split_feature") is not None for tree in booster.dump_model()["tree_info"])


def _config_to_json(config: ModelConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
