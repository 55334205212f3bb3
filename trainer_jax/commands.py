"""The trainer's commands (``train``, ``score``, ``probe``, ``validate``): parse, call, render.

``cli.BasepickGroup`` loads this module only when one of these commands runs (or ``basepick --help``
lists them), so ``basepick rank`` never imports the trainer. The library calls import jax lazily too.
"""

from __future__ import annotations

import sys

import click

from predictor.jobs.options import Range, on_duplicate_option, seed_option
from trainer_jax.data.schemas import SCHEMAS


def note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


SCHEMA_NAMES = ", ".join(SCHEMAS)


def _split(value: str | None) -> str | None:
    return None if value in (None, "all") else value


def _buckets(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give comma-separated token counts, e.g. 512,1024,2048", param_hint="'--buckets'") from None


@click.command()
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
@click.option("--lr", type=Range(0, 1, min_open=True), metavar="X", help="Learning rate (default: 2e-6 BT, 5e-6 regression).")
@click.option("--lr-sweep", is_flag=True, help="Train at every learning rate of the recipe's grid and keep the best (compiled once).")
@click.option("--epochs", type=click.IntRange(min=1), metavar="N", help="Epochs (default: 1 BT, 2 regression).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, metavar="B", help="Global batch (pairs or rows per optimizer step).")
@click.option("--micro-batch", type=click.IntRange(min=1), default=8, show_default=True, metavar="M", help="Per forward pass; B/M passes are accumulated.")
@click.option("--labels-out", metavar="LABELS.csv", help="Append the trained model's RewardBench label row here.")
@click.option("--model-id", metavar="ID", help="Hugging Face id of the base, for the label row.")
@click.option("--rewardbench", metavar="FILE", help="RewardBench v1 rows (prompt/chosen/rejected/subset) to score the model on.")
@click.option("--train-data-name", metavar="NAME", help="train_data of the label row (default: the --data file name).")
@click.option("--allow-overlap", is_flag=True, help="Accept validation examples whose prompt also occurs in --data (refused by default: it inflates validation accuracy).")
@click.option("--max-length", type=click.IntRange(min=1), default=2048, show_default=True, metavar="T", help="Tokens per sequence.")
@click.option("--buckets", metavar="T1,T2,...", help="Padded batch lengths, i.e. the compiled shapes (default: 1/8, 1/4, 1/2, 3/4 and all of --max-length).")
@click.option("--truncate", type=click.Choice(["left"]), help="Left-truncate over-length examples instead of dropping them.")
@seed_option("Seed of the reward head's initialisation and the data order (0 to 2**32-1).")
@click.option("--dtype", type=click.Choice(["bfloat16", "float32"]), default="bfloat16", show_default=True, help="Compute dtype (weights and optimizer state stay float32).")
@click.option("--remat", type=click.Choice(["full", "dots", "none"]), default="full", show_default=True, help="Recompute layers in the backward pass: full (least memory), dots (keep matmul outputs), none.")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=20, show_default=True, metavar="N")
@click.option("--eval-every", type=click.IntRange(min=1), default=20, show_default=True, metavar="N", help="Optimizer steps between validations (the best one's parameters are kept).")
@click.option("--save-every", type=click.IntRange(min=1), default=100, show_default=True, metavar="N", help="Optimizer steps between resume states (also saved on SIGTERM/SIGINT).")
@click.option("--max-steps", type=click.IntRange(min=1), metavar="N", help="Stop after N optimizer steps.")
@click.option("--center", type=Range(min=0), default=0.0, show_default=True, metavar="C", help="BT reward-centering coefficient (0.01 is usual).")
@click.option("--mesh-data", type=click.IntRange(min=1), default=1, show_default=True, metavar="D", help="Devices on the data axis; the rest shard parameters (FSDP).")
@click.option("--resume", is_flag=True, help="Continue RUN_DIR.partial from its last checkpoint.")
@click.option("--dry-run", is_flag=True, help="Estimate memory per device from config.json alone and say whether the run fits (exit 1 if not).")
@click.option("--device-memory", type=Range(min=0, min_open=True), metavar="GB", help="Memory per device for --dry-run (default: what the devices report).")
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
          rewardbench, train_data_name, allow_overlap, max_length, buckets, truncate, seed, dtype, remat, warmup_steps, eval_every,
          save_every, max_steps, center, mesh_data, resume, dry_run, device_memory, devices, platform, distributed, coordinator,
          num_processes, process_id, coordinator_timeout, fmt):
    """Train a reward model on BASE_DIR (a local Hugging Face model directory) and export it to RUN_DIR/model."""
    from predictor.jobs import render
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
                       train_data_name=train_data_name, allow_overlap=allow_overlap, note=note)
    click.echo(render.to_json(result.to_json()) if fmt == "json" else train_table(result), nl=False)
    if labels_out and result.finished:
        note(f"appended a {recipe} label for {model_id} to {labels_out}")
    if not result.finished:
        note(f"stopped by {result.stopped_by}; {result.run_dir} holds the run: repeat the same command with --resume "
             "to continue")
        if result.stopped_by in ("SIGINT", "SIGTERM"):  # the shell's convention for a signalled process
            import signal

            sys.exit(128 + int(getattr(signal, result.stopped_by)))


@click.command()
@click.argument("labels", metavar="LABELS.csv")
@click.option("--predictor", "predictor_dir", metavar="DIR", help="Predictor artifact (default: the shipped one).")
@click.option("--features", "features", multiple=True, metavar="FEATURES.csv", help="Feature file (repeatable) merged over the snapshot, e.g. `basepick ingest` output for a base outside the leaderboard.")
@on_duplicate_option()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def validate(labels, predictor_dir, features, on_duplicate, fmt):
    """Compare the predictor's predictions for the bases in LABELS.csv with their measured RewardBench labels.

    Rows the predictor was fitted on are marked in-sample: their errors are optimistic.
    """
    from predictor.jobs import render
    from trainer_jax.evals.validate import render_table
    from trainer_jax.evals.validate import validate as run_validate

    report = run_validate(labels, predictor_dir, features, on_duplicate=on_duplicate, note=note)
    for skipped in report.skipped:
        note(f"skipped {skipped}")
    click.echo(render.to_json(report.to_json()) if fmt == "json" else render_table(report) + "\n", nl=False)



class _ProbeGroup(click.Group):
    """``basepick probe MODEL_DIR ...`` runs ``probe run``; ``basepick probe compare ...`` compares."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ProbeGroup, invoke_without_command=True, no_args_is_help=False)
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
    from predictor.jobs import render
    from trainer_jax.evals import probe_compare as pc

    if heatmap:
        from predictor.jobs.plot import require_matplotlib

        require_matplotlib()
    result = pc.compare(pc.read_inputs(inputs, note=note), bins=bins)
    if heatmap:
        pc.write_heatmap(result, heatmap)
        note(f"wrote {heatmap}")
    if fmt == "json":
        click.echo(render.to_json(result.to_json()), nl=False)
    else:
        pc.render_table(result)


@click.command()
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

    from predictor.jobs import render
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
