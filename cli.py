"""basepick's command line: parse, call one library function, render. Nothing else lives here.

Results go to stdout (table, JSON or CSV); notes, warnings and progress go to stderr. Exit codes:
0 success, 1 a requested gate failed, 2 bad usage or input (one ``Error: ...`` line, no traceback).
"""

from __future__ import annotations

import sys

import click

from predictor.errors import BasepickError

RECIPES = ("regression", "bradley_terry")
TARGETS = ("score", "chat", "chat_hard", "safety", "reasoning")
FORMATS = ("table", "json", "csv")
SPLITS = ("lineage", "temporal", "random")
ALLOW_PARTIAL = "Also use partial labels (an eval value containing 'partial': an incomplete RewardBench run)."


class Range(click.FloatRange):
    """click.FloatRange that also refuses NaN (which compares false with both bounds and so passes them)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number in the range {self._describe_range()}.", param, ctx)
        return number


def note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class BasepickGroup(click.Group):
    """Turns every error into one ``Error: ...`` line on stderr and the documented exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except BasepickError as exc:
            click.echo(f"Error: {_one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except BrokenPipeError:  # `basepick rank ... | head`
            sys.exit(0)
        sys.exit(code if isinstance(code, int) else 0)


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
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def rank(candidates, pool, recipe, target, predictor_dir, top, max_params, weights, level, top_k, scale, plot, fmt):
    """Rank candidate base models by predicted RewardBench score.

    CANDIDATES.csv needs a model_id column (Hugging Face ids). Optional columns override the shipped
    snapshot: ifeval bbh math_lvl5 gpqa musr mmlu_pro (leaderboard v2, normalised), arc hellaswag mmlu
    truthfulqa winogrande gsm8k (v1), params_b, pretrain_tokens_t, post_training, presence_<domain>.
    The table ends with a legend of its columns.
    """
    from predictor import api, render

    if (candidates is None) == (pool is None):
        raise click.UsageError("give either CANDIDATES.csv or --pool leaderboard")
    if weights is not None and target != "score":
        raise click.UsageError("--weights combines the sections; it cannot be used with --target")
    if plot:
        from predictor.plot import require_matplotlib

        require_matplotlib()
    ranking = api.ranking(candidates, pool=pool, recipe=recipe, target=target, predictor=predictor_dir, top=top,
                          max_params=max_params, weights=weights, level=level, top_k=top_k, scale=scale, note=note)
    if plot:
        from predictor.plot import forest_plot

        forest_plot(ranking, plot)
        note(f"wrote {plot}")
    if fmt == "json":
        click.echo(render.to_json(ranking.to_json()), nl=False)
    elif fmt == "csv":
        click.echo(render.ranking_csv(ranking), nl=False)
    else:
        render.ranking_table(ranking)


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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the Monte Carlo draws.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def plan(candidates, budget, recipe, labels, confidence, predictor_dir, allow_partial, emit, scale, seed, fmt):
    """Propose which K candidate bases to train next, learning from the labels measured so far.

    CANDIDATES.csv is as for rank, plus an optional lineage column (otherwise the lineage comes from the
    study's metadata or the model id). Measured labels move their siblings' predictions.
    """
    from predictor import api, render
    from predictor.plan import write_runs

    result = api.planning(candidates, budget=budget, recipe=recipe, labels=list(labels), confidence=confidence,
                          predictor=predictor_dir, allow_partial=allow_partial, scale=scale, seed=seed, note=note)
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
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--allow-partial", is_flag=True, help=ALLOW_PARTIAL)
def fit(labels, no_shipped_labels, features, out, seed, allow_partial):
    """Fit a predictor from labels (RewardBench results per base model and recipe).

    Every label row needs a known recipe and RewardBench points 0-100 for score and the four sections,
    with score their mean (within 0.15).
    """
    from predictor import api

    if no_shipped_labels and not labels:
        raise click.UsageError("--no-shipped-labels needs at least one --labels file")
    api.fit(list(labels), out=out, shipped_labels=not no_shipped_labels, features=list(features), seed=seed,
            allow_partial=allow_partial, note=note)


@main.command()
@click.argument("predictors", nargs=-1, metavar="[DIR]...")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def inspect(predictors, fmt):
    """List predictor artifacts: version, parent, inputs and fit-time leave-lineage-out quality."""
    from predictor import artifact, render
    from predictor.data import shipped_predictor_dir

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
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=1000, show_default=True, help="Lineage-bootstrap resamples for the 95% intervals.")
@click.option("--no-baselines", is_flag=True, help="Evaluate the predictor only.")
@click.option("--fail-under", type=Range(-1, 1), metavar="RHO", help="Exit 1 when the predictor's Spearman is below RHO, in [-1, 1] (a CI gate).")
@click.option("--allow-partial", is_flag=True, help=ALLOW_PARTIAL)
@click.option("--budget", type=click.IntRange(min=1), metavar="N", help="Also simulate training N bases of random pools, policy by policy (regret after 1..N runs).")
@click.option("--pool-size", type=click.IntRange(min=2), default=12, show_default=True, metavar="M", help="Candidates per simulated pool (with --budget).")
@click.option("--pools", "n_pools", type=click.IntRange(min=1), default=40, show_default=True, metavar="P", help="Simulated pools (with --budget).")
@click.option("--plot", type=click.Path(dir_okay=False), metavar="FILE.png", help="Predicted vs measured with intervals; with --budget, regret vs runs per policy (needs basepick[plot]).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def evaluate(labels, features, recipe, target, split, level, n_boot, no_baselines, fail_under, allow_partial, budget,
             pool_size, n_pools, plot, fmt):
    """Out-of-fold evaluation of the predictor against baselines, in the same folds.

    With --budget N it also simulates the decision basepick serves: pools of --pool-size labelled bases,
    policies that train N of them one by one; no pool's labels ever train what scores it.

    \b
    Columns: ρ Spearman and τ Kendall rank correlation (1 = the measured order); MAE mean absolute
    error, points; cov@k share of the measured top k found in the predicted top k; regret@1/bkt points
    lost by taking the predicted best instead of the measured best, per size bucket (<3B, 3-6B, >=6B),
    averaged; best3/bkt the same for the best of the predicted top 3; regret@1 over all models pooled.
    """
    from predictor import api, render
    from predictor.errors import GateFailed

    if plot:
        from predictor.plot import require_matplotlib

        require_matplotlib()
    ev = api.evaluation(list(labels) or None, features=list(features), recipe=recipe, target=target, split=split,
                        level=level, bootstrap=n_boot, baselines=not no_baselines, allow_partial=allow_partial,
                        budget=budget, pool_size=pool_size, pools=n_pools, note=note)
    if plot:
        from predictor.plot import budget_plot, evaluation_plot

        (budget_plot if budget else evaluation_plot)(ev, plot)
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
    from predictor import check as K
    from predictor import render

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
@click.option("--out", required=True, metavar="FEATURES.csv", help="Feature CSV to write; an existing file is updated (other models' rows kept).")
@click.option("--model-id", metavar="ID", help="Hugging Face id of the evaluated model (default: the one the results name).")
def ingest(results_dir, out, model_id):
    """Convert lm-evaluation-harness results into basepick features (leaderboard normalisation).

    Reads every results_*.json under RESULTS_DIR (leaderboard_* tasks and the v1 tasks arc_challenge,
    hellaswag, mmlu, truthfulqa_mc2, winogrande, gsm8k). Use the file with `basepick rank`.
    """
    from predictor.ingest import ingest as run_ingest

    models = run_ingest(results_dir, out, model_id=model_id, note=note)
    for m in models:
        click.echo(f"{m.model_id}: " + ", ".join(f"{k} {v:.2f}" for k, v in m.scores.items()))
    note(f"wrote {out} ({len(models)} model(s))")


# --- trainer commands ---


SCHEMA_NAMES = "helpsteer2, helpsteer2-preference, trl, hh-rlhf, rewardbench, rewardbench2"


def _split(value: str | None) -> str | None:
    return None if value in (None, "all") else value


def _buckets(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give comma-separated token counts, e.g. 512,1024,2048", param_hint="'--buckets'") from None


@main.command()
@click.argument("base_dir", metavar="BASE_DIR")
@click.option("--data", metavar="FILE", help="Training rows: preference pairs (bradley_terry) or HelpSteer2 rows (regression); .jsonl(.gz), .json, .parquet or a datasets folder.")
@click.option("--eval-data", metavar="FILE", help="Preference pairs for validation accuracy (and the regression merge vector).")
@click.option("--schema", metavar="NAME", help=f"Row schema of --data (default: recognised from its columns): {SCHEMA_NAMES}.")
@click.option("--eval-schema", metavar="NAME", help="Row schema of --eval-data (default: recognised).")
@click.option("--split", default="train", show_default=True, metavar="NAME", help="HelpSteer2-Preference rows of --data: only this split ('all': every row).")
@click.option("--eval-split", default="val", show_default=True, metavar="NAME", help="HelpSteer2-Preference rows of --eval-data: only this split ('all': every row).")
@click.option("--strength-margin", is_flag=True, help="HelpSteer2-Preference: |preference_strength| as the Bradley-Terry margin (a TRL 'margin' column always is).")
@click.option("--attribute-head", is_flag=True, help="Regression: export the 5-attribute head (default: one reward, the merge weights folded in).")
@click.option("--recipe", required=True, type=click.Choice(["bradley_terry", "regression"]), help="The seed study's recipe preset.")
@click.option("--out", metavar="RUN_DIR", help="New run directory (built as RUN_DIR.partial, renamed when done).")
@click.option("--lr", type=float, metavar="X", help="Learning rate (default: 2e-6 BT, 5e-6 regression).")
@click.option("--lr-sweep", is_flag=True, help="Train at every learning rate of the recipe's grid and keep the best (compiled once).")
@click.option("--epochs", type=click.IntRange(min=1), metavar="N", help="Epochs (default: 1 BT, 2 regression).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, metavar="B", help="Global batch (pairs or rows per optimizer step).")
@click.option("--micro-batch", type=click.IntRange(min=1), default=8, show_default=True, metavar="M", help="Per forward pass; B/M passes are accumulated.")
@click.option("--labels-out", metavar="LABELS.csv", help="Append the trained model's RewardBench label row here.")
@click.option("--model-id", metavar="ID", help="Hugging Face id of the base, for the label row.")
@click.option("--rewardbench", metavar="FILE", help="RewardBench v1 rows (prompt/chosen/rejected/subset) to score the model on.")
@click.option("--train-data-name", metavar="NAME", help="train_data of the label row (default: the --data file name).")
@click.option("--max-length", type=click.IntRange(min=1), default=2048, show_default=True, metavar="T", help="Tokens per sequence.")
@click.option("--buckets", metavar="T1,T2,...", help="Padded batch lengths, i.e. the compiled shapes (default: 1/8, 1/4, 1/2, 3/4 and all of --max-length).")
@click.option("--truncate", type=click.Choice(["left"]), help="Left-truncate over-length examples instead of dropping them.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dtype", type=click.Choice(["bfloat16", "float32"]), default="bfloat16", show_default=True, help="Compute dtype (weights and optimizer state stay float32).")
@click.option("--remat", type=click.Choice(["full", "dots", "none"]), default="full", show_default=True, help="Recompute layers in the backward pass: full (least memory), dots (keep matmul outputs), none.")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=20, show_default=True, metavar="N")
@click.option("--eval-every", type=click.IntRange(min=1), default=20, show_default=True, metavar="N", help="Optimizer steps between validations (the best one's parameters are kept).")
@click.option("--save-every", type=click.IntRange(min=1), default=100, show_default=True, metavar="N", help="Optimizer steps between resume states (also saved at the end and on SIGTERM/SIGINT).")
@click.option("--max-steps", type=click.IntRange(min=1), metavar="N", help="Stop after N optimizer steps.")
@click.option("--center", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="C", help="BT reward-centering coefficient (0.01 is usual).")
@click.option("--mesh-data", type=click.IntRange(min=1), default=1, show_default=True, metavar="D", help="Devices on the data axis; the rest shard parameters (FSDP).")
@click.option("--resume", is_flag=True, help="Continue RUN_DIR.partial from its last checkpoint.")
@click.option("--dry-run", is_flag=True, help="Estimate memory per device from config.json alone and say whether the run fits (exit 1 if not).")
@click.option("--device-memory", type=click.FloatRange(min=0, min_open=True), metavar="GB", help="Memory per device for --dry-run (default: what the devices report).")
@click.option("--devices", type=click.IntRange(min=1), metavar="N", help="--dry-run: plan for N devices instead of this machine's.")
@click.option("--platform", type=click.Choice(["gpu", "cpu", "tpu"]), help="--dry-run: plan for this platform instead of this machine's (decides the attention kernel).")
@click.option("--distributed", is_flag=True, help="Multi-host: join the other processes first (run the same command on every host).")
@click.option("--coordinator", metavar="HOST:PORT", help="--distributed: process 0's address (default: detected on SLURM/TPU).")
@click.option("--num-processes", type=click.IntRange(min=1), metavar="N", help="--distributed: processes in all.")
@click.option("--process-id", type=click.IntRange(min=0), metavar="I", help="--distributed: this process's rank, 0..N-1.")
@click.option("--coordinator-timeout", type=click.IntRange(min=1), default=300, show_default=True, metavar="S", help="--distributed: seconds to wait for every process to join.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def train(base_dir, data, eval_data, schema, eval_schema, split, eval_split, strength_margin, attribute_head, recipe,
          out, lr, lr_sweep, epochs, batch_size, micro_batch, labels_out, model_id,
          rewardbench, train_data_name, max_length, buckets, truncate, seed, dtype, remat, warmup_steps, eval_every,
          save_every, max_steps, center, mesh_data, resume, dry_run, device_memory, devices, platform, distributed, coordinator,
          num_processes, process_id, coordinator_timeout, fmt):
    """Train a reward model on BASE_DIR (a local Hugging Face model directory) and export it to RUN_DIR/model."""
    from predictor import render
    from trainer_jax import require_train_extra

    require_train_extra()
    if lr is not None and lr_sweep:
        raise click.UsageError("give either --lr or --lr-sweep, not both")
    if not dry_run and not (data and eval_data and out):
        raise click.UsageError("--data, --eval-data and --out are required (only --dry-run goes without them)")
    from trainer_jax.train.recipes import lr_grid, make_config

    config = make_config(recipe, lr=lr, epochs=epochs, global_batch=batch_size, micro_batch=min(micro_batch, batch_size),
                         max_length=max_length, buckets=_buckets(buckets), truncate_left=truncate == "left", seed=seed,
                         dtype=dtype, remat=remat, warmup_steps=warmup_steps, eval_every=eval_every,
                         save_every=save_every, max_steps=max_steps, center_coef=center, mesh_data=mesh_data,
                         schema=schema, eval_schema=eval_schema, split=_split(split), eval_split=_split(eval_split),
                         strength_margin=strength_margin, attribute_head=attribute_head)
    if distributed:
        from trainer_jax.train.mesh import initialize_distributed

        initialize_distributed(coordinator, num_processes, process_id, timeout_s=coordinator_timeout)
    if dry_run:
        from predictor.errors import GateFailed
        from trainer_jax.train.dryrun import estimate, render_table

        report = estimate(base_dir, config, device_memory_gb=device_memory, devices=devices, platform=platform)
        click.echo(render.to_json(report.to_json()) if fmt == "json" else render_table(report), nl=False)
        if not report.fits:
            raise GateFailed(f"the run does not fit: {report.advice()}")
        return
    from trainer_jax.train.run import render_table as train_table
    from trainer_jax.train.run import train as run_train

    result = run_train(base_dir, data, eval_data, out, config, lrs=list(lr_grid(recipe)) if lr_sweep else None,
                       resume=resume, labels_out=labels_out, model_id=model_id, rewardbench=rewardbench,
                       train_data_name=train_data_name, note=note)
    for key in ("train", "eval"):
        if result.data.get(f"{key}_filtered"):
            note(f"{result.data[f'{key}_filtered']} over-length {key} examples dropped (--max-length {max_length}; "
                 "--truncate left keeps them)")
    click.echo(render.to_json(result.to_json()) if fmt == "json" else train_table(result), nl=False)
    if labels_out and result.finished:
        note(f"appended a {recipe} label for {model_id} to {labels_out}")
    if not result.finished:
        note(f"stopped by {result.stopped_by}; {result.run_dir} holds the run: repeat the same command with --resume "
             "to continue")
        if result.stopped_by in ("SIGINT", "SIGTERM"):  # the shell's convention for a signalled process
            import signal

            sys.exit(128 + int(getattr(signal, result.stopped_by)))


@main.command()
@click.argument("labels", metavar="LABELS.csv")
@click.option("--predictor", "predictor_dir", metavar="DIR", help="Predictor artifact (default: the shipped one).")
@click.option("--features", "features", multiple=True, metavar="FEATURES.csv", help="Feature file (repeatable) merged over the snapshot, e.g. `basepick ingest` output for a base outside the leaderboard.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def validate(labels, predictor_dir, features, fmt):
    """Compare the predictor's predictions for the bases in LABELS.csv with their measured RewardBench labels.

    Rows the predictor was fitted on are marked in-sample: their errors are optimistic.
    """
    from predictor import render
    from trainer_jax.evals.validate import render_table
    from trainer_jax.evals.validate import validate as run_validate

    report = run_validate(labels, predictor_dir, features, note=note)
    for skipped in report.skipped:
        note(f"skipped {skipped}")
    click.echo(render.to_json(report.to_json()) if fmt == "json" else render_table(report) + "\n", nl=False)



class _ProbeGroup(click.Group):
    """``basepick probe MODEL_DIR ...`` runs ``probe run``; ``basepick probe compare ...`` compares."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_ProbeGroup, invoke_without_command=True, no_args_is_help=False)
@click.pass_context
def probe(ctx):
    """Presence features: how well a base model predicts documents of each pre-training domain.

    \b
    basepick probe [run] MODEL_DIR --out FEATURES.csv [--corpus CORPUS.jsonl]
    basepick probe compare FEATURES_OR_SCORES ... [--heatmap FILE.png]
    """
    if ctx.invoked_subcommand is None:  # bare `basepick probe`: show both forms
        click.echo(ctx.get_help())


@probe.command("run")
@click.argument("model_dir", metavar="MODEL_DIR")
@click.option("--corpus", metavar="CORPUS.jsonl", help="JSONL(.gz) rows {\"domain\", \"text\"} (default: the shipped probe corpus).")
@click.option("--out", required=True, metavar="FEATURES.csv", help="Features file; this model's row is added or replaced, atomically.")
@click.option("--model-id", metavar="ID", help="Row key (default: the directory name, org/name for a Hugging Face cache snapshot).")
@click.option("--tokens", type=click.IntRange(min=2), default=2048, show_default=True, metavar="N", help="Score the first N tokens of each document.")
@click.option("--docs-per-domain", type=click.IntRange(min=1), metavar="K", help="Score only the first K documents of each domain.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, metavar="B", help="Documents per forward pass.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True, help="Decoder compute dtype (log-softmax is fp32).")
@click.option("--scores-out", metavar="SCORES.jsonl", help="Also write per-document scores (input for `basepick probe compare`).")
def probe_run(model_dir, corpus, out, model_id, tokens, docs_per_domain, batch_size, dtype, scores_out):
    """Write presence_<domain> (mean log-prob per token), spread_<domain> and docs_<domain> for MODEL_DIR.

    A document's score is the mean of log p(t_i | t_<i) over positions 2..n of its first n = min(#tokens, N)
    tokens, as the model's tokenizer produces them. An interrupted run resumes from a sidecar next to --out.
    """
    from trainer_jax import require_train_extra

    require_train_extra()
    from trainer_jax.evals.probe import default_corpus
    from trainer_jax.evals.probe import probe as run_probe

    result = run_probe(model_dir, corpus or default_corpus(), out, model_id=model_id, tokens=tokens,
                       docs_per_domain=docs_per_domain, batch_size=batch_size, dtype=dtype,
                       scores_out=scores_out, note=note)
    click.echo("model_id,domain,presence,spread,docs")
    for d in result.domains:
        click.echo(f"{result.config.model_id},{d.domain},{d.presence:.6f},{d.spread:.6f},{len(d.scores)}")
    note(f"wrote {out}" + (f" and {scores_out}" if scores_out else ""))


@probe.command("compare")
@click.argument("inputs", nargs=-1, required=True, metavar="FEATURES_OR_SCORES...")
@click.option("--bins", type=click.IntRange(min=1), metavar="K", help="Shared histogram bins per domain (default: ceil(sqrt(docs)), 5-30).")
@click.option("--heatmap", metavar="FILE.png", help="Also draw model x model heatmaps (needs the 'plot' extra).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def probe_compare(inputs, bins, heatmap, fmt):
    """Jensen-Shannon distances (base 2: 0 identical, 1 disjoint) between models' per-domain score distributions.

    Inputs are --scores-out files (per-document scores: exact histograms) or FEATURES.csv files (means and
    spreads only: compared as normal distributions, flagged as approximate).
    """
    from predictor import render
    from trainer_jax.evals import probe_compare as pc

    if heatmap:
        from predictor.plot import require_matplotlib

        require_matplotlib()
    result = pc.compare(pc.read_inputs(inputs, note=note), bins=bins)
    if heatmap:
        pc.write_heatmap(result, heatmap)
        note(f"wrote {heatmap}")
    if fmt == "json":
        click.echo(render.to_json(result.to_json()), nl=False)
    else:
        pc.render_table(result)


@main.command()
@click.argument("model_dir", metavar="MODEL_DIR")
@click.option("--data", required=True, metavar="FILE", help="Rows to score: pairs (TRL, HH-RLHF, RewardBench, HelpSteer2-Preference) or RewardBench 2; .jsonl(.gz), .json, .parquet or a datasets folder.")
@click.option("--schema", metavar="NAME", help=f"Row schema (default: recognised from the columns): {SCHEMA_NAMES}.")
@click.option("--split", metavar="NAME", help="HelpSteer2-Preference rows: only this split (train or val).")
@click.option("--max-length", type=click.IntRange(min=1), default=2048, show_default=True, metavar="T", help="Keep the last T tokens of longer completions (as reward-bench does).")
@click.option("--out", metavar="SCORES.jsonl", help="Write per-row scores here (atomically); without it they go to stdout and the summary to stderr.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, metavar="N", help="Pairs per forward pass.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True, help="Compute dtype (parameters stay float32).")
@click.option("--weights", metavar="W1,W2,...", help="Weights that turn a multi-output (regression) reward model into one score.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def score(model_dir, data, schema, split, max_length, out, batch_size, dtype, weights, fmt):
    """Score a data file with a trained reward model directory (HF *ForSequenceClassification).

    Prints pairwise accuracy (chosen > rejected, ties wrong), RewardBench v1 sections when every pair
    names its RewardBench subset, and the RewardBench 2 score for RewardBench 2 rows.
    """
    import json

    from predictor import render
    from trainer_jax import require_train_extra

    require_train_extra()
    from trainer_jax.evals.score import render_table, score_file

    try:
        weight_list = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise click.BadParameter("--weights must be comma-separated numbers") from None
    report = score_file(model_dir, data, out=out, batch_size=batch_size, dtype=dtype, weights=weight_list, schema=schema,
                        split=split, max_length=max_length, note=note)
    if out is None:
        for row in report.rows:
            click.echo(json.dumps(row))
    summary = render.to_json(report.to_dict()) if fmt == "json" else render_table(report) + "\n"
    click.echo(summary, err=out is None, nl=False)
    if out is not None:
        note(f"wrote {report.n_items} rows to {out}")
