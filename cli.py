"""basepick's command line: parse, call one library function, render. Nothing else lives here.

Results go to stdout (table, JSON or CSV); notes, warnings and progress go to stderr. Exit codes:
0 success, 1 a requested gate failed, 2 bad usage or input (one ``Error: ...`` line, no traceback).
"""

from __future__ import annotations

import sys

import click

from predictor.data.dataset import SPLITS
from predictor.errors import BasepickError
from predictor.jobs.options import Range, on_duplicate_option, seed_option

RECIPES = ("regression", "bradley_terry")
TARGETS = ("score", "chat", "chat_hard", "safety", "reasoning")
FORMATS = ("table", "json", "csv")
ALLOW_PARTIAL = "Also use partial labels (an eval value containing 'partial': an incomplete RewardBench run)."


def note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class BasepickGroup(click.Group):
    """Turns every error into one ``Error: ...`` line on stderr and the documented exit code.

    The trainer's commands live in ``trainer_jax.commands`` and are imported only when asked for, so
    the predictor's commands never load the trainer.
    """

    LAZY = {name: "trainer_jax.commands" for name in ("train", "score", "probe", "validate")}

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx, name):
        if name in self.LAZY:
            import importlib

            return getattr(importlib.import_module(self.LAZY[name]), name)
        return super().get_command(ctx, name)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        results = ResultStream(sys.stdout)
        sys.stdout = results
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            results.flush()  # inside the handlers: a full disk is an error here, not at interpreter exit
        except BrokenPipeError:  # `basepick rank ... | head`: the reader has what it wanted
            results.discard()
            sys.exit(0)
        except click.exceptions.NoArgsIsHelpError as exc:  # `basepick` alone: the help, not an error
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        except BasepickError as exc:
            click.echo(f"Error: {_one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Aborted.", err=True)
            sys.exit(130)
        finally:
            sys.stdout = results.stream
        sys.exit(code if isinstance(code, int) else 0)


class ResultStream:
    """The command's stdout. Results are all a command writes there, so a failure to write them is the
    user's to fix, in one line: a closed stdout (``>&-``) or a failed write (``> /dev/full``) raises
    ``BasepickError``; a reader gone (``| head``) raises ``BrokenPipeError``, which ends the command
    quietly with exit 0."""

    def __init__(self, stream):
        self.stream = stream

    def _fail(self, exc: OSError | None):
        if isinstance(exc, BrokenPipeError):
            raise exc
        if exc is None:
            raise BasepickError("cannot write the results: standard output is closed; send it somewhere "
                                "(`> results.txt`, or `> /dev/null` to drop them)")
        raise BasepickError(f"cannot write the results to standard output: {exc.strerror or exc}; check the disk "
                            "or device it goes to")

    def write(self, text: str) -> int:
        if self.stream is None:
            self._fail(None)
        try:
            return self.stream.write(text)
        except OSError as exc:
            self._fail(exc)

    def flush(self) -> None:
        if self.stream is not None:
            try:
                self.stream.flush()
            except OSError as exc:
                self._fail(exc)

    def discard(self) -> None:
        """After a broken pipe: point stdout at /dev/null, so the interpreter's last flush has nowhere to fail."""
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        except (AttributeError, OSError, ValueError):  # not a real file (tests), or already gone
            pass

    def isatty(self) -> bool:
        return self.stream is not None and self.stream.isatty()

    def __getattr__(self, name):  # encoding, fileno, ... as the real stream has them
        if self.stream is None:
            self._fail(None)
        return getattr(self.stream, name)


@click.group(cls=BasepickGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="basepick", message="basepick %(version)s")
def main() -> None:
    """Pick the base LLM to build a reward model on, before spending GPU-weeks finding out."""


@main.command()
@click.argument("candidates", required=False, metavar="CANDIDATES.csv")
@click.option("--pool", type=click.Choice(["leaderboard"]), help="Rank every model of the shipped leaderboard v2 snapshot instead of a file.")
@click.option("--recipe", type=click.Choice(RECIPES), default="regression", show_default=True, help="Reward-model training recipe.")
@click.option("--target", type=click.Choice(TARGETS), default="score", show_default=True, help="RewardBench overall score or one section.")
@click.option("--predictor", "predictor_dir", metavar="DIR", help="Predictor artifact from `basepick fit` (default: the shipped one).")
@click.option("--top", type=click.IntRange(min=1), metavar="N", help="Show only the best N.")
@click.option("--max-params", type=Range(min=0, min_open=True), metavar="B", help="Drop candidates larger than B billion parameters, by nominal size: the size the name states (an 8.03B \"-8B\" model is 8B) when the recorded count agrees with it within 0.6-1.5x, else the recorded count.")
@click.option("--weights", metavar="S=W,...", help="Rank by a weighted mean of section predictions, e.g. chat=1,chat_hard=2,safety=1,reasoning=1.")
@click.option("--interval", "level", type=Range(0.5, 0.99), default=0.8, show_default=True, help="Coverage of the prediction interval (quantile of leave-lineage-out residuals).")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="k of the P(top k) column: probability of being among the k best.")
@click.option("--scale", type=click.Choice(["auto", "percent", "fraction"]), default="auto", show_default=True, help="Units of the score columns. auto: a `scale` column (ingest writes it) decides its rows; the rest of the file is fractions when every score is at most 1, else percent.")
@click.option("--plot", type=click.Path(dir_okay=False), metavar="FILE.png", help="Forest plot of the predictions with intervals (needs basepick[plot]).")
@click.option("--strict", is_flag=True, help="Refuse candidates without any input of the ranking method (default: rank the others and list these with the command that gets their features).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def rank(candidates, pool, recipe, target, predictor_dir, top, max_params, weights, level, top_k, scale, plot, strict,
         fmt):
    """Rank candidate base models by predicted RewardBench score.

    CANDIDATES.csv needs a model_id column (Hugging Face ids). Optional columns override the shipped
    snapshot: ifeval bbh math_lvl5 gpqa musr mmlu_pro (leaderboard v2, normalised), arc hellaswag mmlu
    truthfulqa winogrande gsm8k (v1), params_b, pretrain_tokens_t, post_training, presence_<domain>.
    The table ends with a legend of its columns. Candidates without the method's inputs are listed after
    it with the command that produces them (exit 2 when no candidate can be ranked).
    """
    from predictor import api
    from predictor.jobs import render

    if (candidates is None) == (pool is None):
        raise click.UsageError("give either CANDIDATES.csv or --pool leaderboard")
    if weights is not None and target != "score":
        raise click.UsageError("--weights combines the sections; it cannot be used with --target")
    if plot:
        from predictor.jobs.plot import require_matplotlib

        require_matplotlib()
    ranking = api.ranking(candidates, pool=pool, recipe=recipe, target=target, predictor=predictor_dir, top=top,
                          max_params=max_params, weights=weights, level=level, top_k=top_k, scale=scale, strict=strict,
                          note=note)
    if plot and ranking.candidates:
        from predictor.jobs.plot import forest_plot

        forest_plot(ranking, plot)
        note(f"wrote {plot}")
    if fmt == "json":
        click.echo(render.to_json(ranking.to_json()), nl=False)
    elif fmt == "csv":
        click.echo(render.ranking_csv(ranking), nl=False)
    else:
        render.ranking_table(ranking)
    ranking.check_ranked()


@main.command()
@click.argument("candidates", metavar="CANDIDATES.csv")
@click.option("--budget", type=click.IntRange(min=1), required=True, metavar="K", help="Runs to propose now (they go out in parallel).")
@click.option("--recipe", type=click.Choice(RECIPES), default="regression", show_default=True, help="Reward-model training recipe.")
@click.option("--labels", "labels", multiple=True, metavar="MEASURED.csv", help="Measured labels of candidates (repeatable), e.g. from `basepick train --labels-out`.")
@click.option("--confidence", type=Range(0.5, 0.999), default=0.9, show_default=True, help="Recommend stopping once P(best measured within 1 point of the pool's best) reaches this.")
@click.option("--predictor", "predictor_dir", metavar="DIR", help="Predictor artifact from `basepick fit` (default: the shipped one).")
@click.option("--allow-partial", is_flag=True, help=ALLOW_PARTIAL)
@click.option("--emit", metavar="RUNS.jsonl", help="Write one `basepick train` command per proposal (see examples/slurm/).")
@click.option("--scale", type=click.Choice(["auto", "percent", "fraction"]), default="auto", show_default=True, help="Units of score columns, as for rank.")
@on_duplicate_option()
@seed_option("Seed of the Monte Carlo draws (0 to 2**32-1).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def plan(candidates, budget, recipe, labels, confidence, predictor_dir, allow_partial, emit, scale, on_duplicate, seed,
         fmt):
    """Propose which K candidate bases to train next, learning from the labels measured so far.

    CANDIDATES.csv is as for rank, plus an optional lineage column (otherwise the lineage comes from the
    study's metadata or the model id). Measured labels move their siblings' predictions.
    """
    from predictor import api
    from predictor.jobs import render
    from predictor.jobs.plan import write_runs

    result = api.planning(candidates, budget=budget, recipe=recipe, labels=list(labels), confidence=confidence,
                          predictor=predictor_dir, allow_partial=allow_partial, on_duplicate=on_duplicate, scale=scale,
                          seed=seed, note=note)
    if emit:
        write_runs(result, emit)
        note(f"wrote {emit} ({len(result.proposals)} run(s))")
    if fmt == "json":
        click.echo(render.to_json(result.to_json()), nl=False)
    else:
        render.plan_table(result)


@main.command()
@click.option("--labels", "labels", multiple=True, metavar="LABELS.csv", help="Label file (repeatable), added to the shipped labels.")
@click.option("--no-shipped-labels", is_flag=True, help="Fit on the given --labels only.")
@click.option("--features", "features", multiple=True, metavar="FEATURES.csv", help="Feature file (repeatable) merged over the snapshot, e.g. presence_* from `basepick probe`.")
@click.option("--out", required=True, metavar="DIR", help="Artifact directory to write (atomically).")
@seed_option("Seed of the LightGBM bags and the method choice's pools (0 to 2**32-1).")
@click.option("--allow-partial", is_flag=True, help=ALLOW_PARTIAL)
@on_duplicate_option()
def fit(labels, no_shipped_labels, features, out, seed, allow_partial, on_duplicate):
    """Fit a predictor from labels (RewardBench results per base model and recipe).

    Every label row needs a known recipe and RewardBench points 0-100 for score and the four sections,
    with score their mean (within 0.15).
    """
    from predictor import api

    if no_shipped_labels and not labels:
        raise click.UsageError("--no-shipped-labels needs at least one --labels file")
    api.fit(list(labels), out=out, shipped_labels=not no_shipped_labels, features=list(features), seed=seed,
            allow_partial=allow_partial, on_duplicate=on_duplicate, note=note)


@main.command()
@click.argument("predictors", nargs=-1, metavar="[DIR]...")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def inspect(predictors, fmt):
    """List predictor artifacts: version, parent, inputs and fit-time leave-lineage-out quality."""
    from predictor.data.shipped import shipped_predictor_dir
    from predictor.jobs import render
    from predictor.models import artifact

    summaries = [artifact.summary(p) for p in (predictors or [shipped_predictor_dir()])]
    if fmt == "json":
        click.echo(render.to_json({"schema_version": 1, "predictors": summaries}), nl=False)
    else:
        render.artifacts_table(summaries)


@main.command()
@click.option("--labels", "labels", multiple=True, metavar="LABELS.csv", help="Label file (repeatable; default: the shipped labels).")
@click.option("--features", "features", multiple=True, metavar="FEATURES.csv", help="Feature file (repeatable) merged over the snapshot; presence_* columns are evaluated with and without.")
@click.option("--recipe", type=click.Choice(RECIPES), default="regression", show_default=True)
@click.option("--target", type=click.Choice(TARGETS), default="score", show_default=True)
@click.option("--split", type=click.Choice(SPLITS), default="lineage", show_default=True, help="lineage: whole lineages held out (primary); temporal: later releases predicted from earlier ones; random: 5-fold (optimistic reference).")
@click.option("--interval", "level", type=Range(0.5, 0.99), default=0.8, show_default=True, help="Nominal coverage of the prediction intervals checked.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(0, 100_000), default=1000, show_default=True, help="Lineage-bootstrap resamples for the 95% intervals.")
@click.option("--no-baselines", is_flag=True, help="Evaluate the predictor only.")
@click.option("--fail-under", type=Range(-1, 1), metavar="RHO", help="Exit 1 when the predictor's Spearman is below RHO, in [-1, 1] (a CI gate).")
@click.option("--allow-partial", is_flag=True, help=ALLOW_PARTIAL)
@on_duplicate_option()
@click.option("--budget", type=click.IntRange(min=1), metavar="N", help="Also simulate training N bases of random pools, policy by policy (regret after 1..N runs).")
@click.option("--pool-size", type=click.IntRange(min=2), default=12, show_default=True, metavar="M", help="Candidates per simulated pool (with --budget or --calibration).")
@click.option("--pools", "n_pools", type=click.IntRange(1, 100_000), default=40, show_default=True, metavar="P", help="Simulated pools (with --budget or --calibration).")
@click.option("--calibration", is_flag=True, help="Also check rank's intervals and P(top 3) and plan's P(best) out of pool, on --pools pools of --pool-size.")
@seed_option("Seed of the simulated pools, the bootstrap and the random split (0 to 2**32-1).")
@click.option("--plot", type=click.Path(dir_okay=False), metavar="FILE.png", help="Predicted vs measured with intervals; with --budget, regret vs runs per policy; with --calibration, reliability (needs basepick[plot]).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def evaluate(labels, features, recipe, target, split, level, n_boot, no_baselines, fail_under, allow_partial,
             on_duplicate, budget, pool_size, n_pools, calibration, seed, plot, fmt):
    """Out-of-fold evaluation of the predictor against baselines, in the same folds.

    With --budget N it also simulates the decision basepick serves: pools of --pool-size labelled bases,
    policies that train N of them one by one; no pool's labels ever train what scores it.

    \b
    Columns: ρ Spearman and τ Kendall rank correlation (1 = the measured order); MAE mean absolute
    error, points; cov@k share of the measured top k found in the predicted top k; regret@1/bkt points
    lost by taking the predicted best instead of the measured best, per size bucket (<3B, 3-6B, >=6B),
    averaged; best3/bkt the same for the best of the predicted top 3; regret@1 over all models pooled.
    """
    from predictor import api
    from predictor.errors import GateFailed
    from predictor.jobs import render

    if plot:
        from predictor.jobs.plot import require_matplotlib

        require_matplotlib()
    ev = api.evaluation(list(labels) or None, features=list(features), recipe=recipe, target=target, split=split,
                        level=level, bootstrap=n_boot, baselines=not no_baselines, allow_partial=allow_partial,
                        on_duplicate=on_duplicate, budget=budget, pool_size=pool_size, pools=n_pools,
                        calibration=calibration, seed=seed, note=note)
    if plot:
        from predictor.jobs.plot import evaluation_figure

        evaluation_figure(ev, plot)
        note(f"wrote {plot}")
    if fmt == "json":
        click.echo(render.to_json(ev.to_json()), nl=False)
    else:
        render.evaluation_table(ev)
    rho = ev.methods[0].metrics["spearman"]
    if fail_under is not None and not rho >= fail_under:
        raise GateFailed(f"the predictor's Spearman {rho:.3f} is below --fail-under {fail_under:g}")


@main.command()
@click.argument("dump", metavar="DUMP")
@click.option("--against", metavar="CURRENT", help="Compare with this dump (laid over the shipped snapshot) instead of the shipped snapshot.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--tolerance", type=Range(min=0), default=2.0, show_default=True, metavar="POINTS", help="A benchmark value may move this many points without counting as changed.")
@click.option("--max-changed", type=Range(0, 1), default=0.01, show_default=True, metavar="SHARE", help="Share of common models per benchmark allowed to move more than --tolerance.")
@click.option("--max-removed", type=Range(0, 1), default=0.01, show_default=True, metavar="SHARE", help="Share of current models a full leaderboard dump may drop.")
@click.option("--eval-drop", type=Range(min=0), default=0.05, show_default=True, metavar="RHO", help="Allowed drop of the lineage-held-out Spearman.")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, metavar="K", help="Recommendations compared per size bucket.")
@click.option("--recipe", type=click.Choice(RECIPES), default="regression", show_default=True)
def check(dump, against, fmt, tolerance, max_changed, max_removed, eval_drop, top_k, recipe):
    """Gate a new benchmark dump: validate it and show what it would change.

    DUMP is an Open LLM Leaderboard v2 CSV, a basepick feature CSV or a folder of lm-evaluation-harness
    results. Exit 0 clean, 1 the gate failed (the report says why), 2 unreadable or unrecognised input.
    """
    from predictor.evals import check as K
    from predictor.jobs import render

    tol = K.Tolerance(points=tolerance, max_changed=max_changed, max_removed=max_removed, eval_drop=eval_drop)
    report = K.check(dump, against=against, tolerance=tol, top_k=top_k, recipe=recipe)
    for message in report["notes"]:
        note(message)
    if fmt == "json":
        click.echo(render.to_json(report), nl=False)
    else:
        render.check_report(report)
    if report["failures"]:
        from predictor.errors import GateFailed

        raise GateFailed(f"check failed: {'; '.join(report['failures'][:3])}")


@main.command()
@click.argument("results_dir", metavar="RESULTS_DIR")
@click.option("--out", required=True, metavar="FEATURES.csv", help="Feature CSV to write; an existing feature table is updated (other models' rows kept); any other file is refused.")
@click.option("--model-id", metavar="ID", help="Hugging Face id of the evaluated model, for runs that loaded a local path (default: the one the results name; another id is refused).")
@click.option("--strict", is_flag=True, help="Refuse results whose settings differ from the leaderboard's, or that lose a benchmark to a missing metric (default: a note each).")
def ingest(results_dir, out, model_id, strict):
    """Convert lm-evaluation-harness results into basepick features (leaderboard normalisation).

    Reads every results_*.json under RESULTS_DIR (leaderboard_* tasks and the v1 tasks arc_challenge,
    hellaswag, mmlu, truthfulqa_mc2, winogrande, gsm8k), checks how they were run against the
    leaderboard's settings (examples/lm-eval/) and records that in the lm_eval_* columns. Use the
    file with `basepick rank`.
    """
    from predictor.data.ingest import ingest as run_ingest

    models = run_ingest(results_dir, out, model_id=model_id, strict=strict, note=note)
    for m in models:
        click.echo(f"{m.model_id}: " + ", ".join(f"{k} {v:.2f}" for k, v in m.scores.items()))
    note(f"wrote {out} ({len(models)} model(s))")
