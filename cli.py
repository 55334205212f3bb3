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
@click.option("--max-params", type=click.FloatRange(min=0, min_open=True), metavar="B", help="Drop candidates larger than B billion parameters.")
@click.option("--scale", type=click.Choice(["auto", "percent", "fraction"]), default="auto", show_default=True, help="Units of score columns: auto detects fractions (all values in [0, 1]) per column.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def rank(candidates, pool, recipe, target, predictor_dir, top, max_params, scale, fmt):
    """Rank candidate base models by predicted RewardBench score.

    CANDIDATES.csv needs a model_id column (Hugging Face ids). Optional columns override the shipped
    snapshot: ifeval bbh math_lvl5 gpqa musr mmlu_pro (leaderboard v2, normalised), arc hellaswag mmlu
    truthfulqa winogrande gsm8k (v1), params_b, pretrain_tokens_t, post_training, presence_<domain>.
    """
    from predictor import artifact, render
    from predictor import candidates as C
    from predictor.data import load_snapshot, shipped_predictor_dir
    from predictor.rank import rank as rank_candidates

    if (candidates is None) == (pool is None):
        raise click.UsageError("give either CANDIDATES.csv or --pool leaderboard")
    bundle = artifact.load(predictor_dir or shipped_predictor_dir())
    snapshot = load_snapshot()
    if pool:
        table = C.ids_only(snapshot.v2_ids, snapshot)
    else:
        table = C.read_candidates(candidates, snapshot, scale=scale, note=note)
    ranking = rank_candidates(table, bundle, recipe=recipe, target=target, top=top, max_params=max_params)
    for message in ranking.notes:
        note(message)
    if fmt == "json":
        click.echo(render.to_json(ranking.to_json()), nl=False)
    elif fmt == "csv":
        click.echo(render.ranking_csv(ranking), nl=False)
    else:
        render.ranking_table(ranking)


@main.command()
@click.option("--labels", "labels", multiple=True, metavar="LABELS.csv", help="Label file (repeatable), added to the shipped labels.")
@click.option("--no-shipped-labels", is_flag=True, help="Fit on the given --labels only.")
@click.option("--out", required=True, metavar="DIR", help="Artifact directory to write (atomically).")
@click.option("--seed", type=int, default=0, show_default=True)
def fit(labels, no_shipped_labels, out, seed):
    """Fit a predictor from labels (RewardBench results per base model and recipe)."""
    from pathlib import Path

    from predictor import artifact
    from predictor.data import LABELS_FILE, benchmarks_dir
    from predictor.fit import fit_bundle

    paths = [Path(p) for p in labels]
    if not no_shipped_labels:
        paths.insert(0, benchmarks_dir() / LABELS_FILE)
    if not paths:
        raise click.UsageError("--no-shipped-labels needs at least one --labels file")
    bundle = fit_bundle(paths, seed=seed)
    artifact.save(bundle, out)
    fitted = ", ".join(f"{r}/{t}" for r, t in sorted(bundle.models))
    note(f"wrote {out} ({len(bundle.models)} models: {fitted})")


# --- trainer commands ---


@main.command()
@click.argument("model_dir", metavar="MODEL_DIR")
@click.option("--data", required=True, metavar="PAIRS.jsonl", help="Rows with chosen/rejected (text or chat messages), optional prompt, id, subset.")
@click.option("--out", metavar="SCORES.jsonl", help="Write per-row scores here (atomically); without it they go to stdout and the summary to stderr.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, metavar="N", help="Pairs per forward pass.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True, help="Compute dtype (parameters stay float32).")
@click.option("--weights", metavar="W1,W2,...", help="Weights that turn a multi-output (regression) reward model into one score.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def score(model_dir, data, out, batch_size, dtype, weights, fmt):
    """Score chosen/rejected pairs with a reward model directory (HF *ForSequenceClassification).

    Prints pairwise accuracy (chosen > rejected, ties wrong) and RewardBench v1 sections when every
    row carries a RewardBench `subset`.
    """
    import json

    from trainer_jax import require_train_extra

    require_train_extra()
    from trainer_jax.score import score_pairs

    try:
        weight_list = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise click.BadParameter("--weights must be comma-separated numbers") from None
    report = score_pairs(model_dir, data, out=out, batch_size=batch_size, dtype=dtype, weights=weight_list)
    if out is None:
        for row in report.rows:
            click.echo(json.dumps(row))
    summary = json.dumps(report.to_dict(), indent=2) if fmt == "json" else _score_table(report)
    click.echo(summary, err=out is None)
    if out is not None:
        note(f"wrote {report.n_pairs} rows to {out}")


def _score_table(report) -> str:
    lines = [f"pairs        {report.n_pairs}", f"accuracy     {100 * report.accuracy:.2f}%",
             f"mean margin  {report.mean_margin:.4f}"]
    rb = report.rewardbench
    if rb is not None:
        lines.append("RewardBench v1" + ("" if rb.complete else " (partial: some subsets missing)"))
        lines += [f"  {section:<11}{100 * value:.2f}" for section, value in rb.sections.items()]
        lines.append(f"  {'Score':<11}" + ("n/a" if rb.overall is None else f"{100 * rb.overall:.2f}"))
    return "\n".join(lines)
