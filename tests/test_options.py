"""Every numeric option of every command (the trainer's too) refuses what is not a finite number in its
range, at parse time, in one line naming the option; and the streams a command writes its results to
end it cleanly: a reader gone is exit 0, a closed or full stdout is one line, exit 2.

The options are found by walking the click commands, so an option added later is covered without a
new test (and must use ``predictor.jobs.options.Range`` or ``click.IntRange``)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

import cli
from tests.conftest import EXAMPLES, REPO, assert_one_line_error


def _commands(group=cli.main, prefix=()):
    """(argv prefix, command) of every command, subcommands of groups (``probe compare``) included."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        try:
            command = group.get_command(ctx, name)
        except ImportError:  # the trainer's commands without the train extra
            continue
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def _numeric_options():
    for argv, command in _commands():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, (click.types._NumberParamTypeBase,)):
                yield pytest.param(argv, param, id=f"{' '.join(argv)} {param.opts[0]}")


NUMERIC = list(_numeric_options())


def test_the_walk_finds_the_options_it_should():
    ids = {p.id for p in NUMERIC}
    assert {"rank --interval", "plan --seed", "fit --seed", "evaluate --bootstrap", "check --tolerance"} <= ids
    if any(i.startswith("train ") for i in ids):  # with the train extra
        assert {"train --lr", "train --device-memory", "probe run --tokens", "probe compare --bins"} <= ids


@pytest.mark.parametrize("command, param", NUMERIC)
def test_every_numeric_option_has_a_range(command, param):
    assert isinstance(param.type, (click.FloatRange, click.IntRange)), (
        f"{command} {param.opts[0]}: give it predictor.jobs.options.Range or click.IntRange, not {param.type!r}")
    if isinstance(param.type, click.FloatRange):
        from predictor.jobs.options import Range

        assert isinstance(param.type, Range), f"{command} {param.opts[0]}: a plain FloatRange lets inf through"


def _bad_values(param) -> list[str]:
    values = ["nan", "inf", "-inf", "1e400", "x"]
    t = param.type
    if t.min is not None:
        values.append(str(t.min - 1) if isinstance(t, click.IntRange) else repr(t.min - max(1.0, abs(t.min))))
        if isinstance(t, click.FloatRange) and t.min_open:
            values.append(repr(float(t.min)))
    if t.max is not None:
        values.append(str(t.max + 1) if isinstance(t, click.IntRange) else repr(t.max + max(1.0, abs(t.max))))
    return values


@pytest.mark.parametrize("command, param", NUMERIC)
def test_every_numeric_option_refuses_what_is_out_of_range(run, command, param):
    opt = param.opts[0]
    for value in _bad_values(param):
        result = run(*command, opt, value)  # given first, it is checked before any missing argument
        assert_one_line_error(result, opt)


def test_seed_bounds_are_the_generators(run, tmp_path):
    assert_one_line_error(run("fit", "--seed", "-1", "--out", tmp_path / "p"), "--seed", "0<=x<=4294967295")
    assert_one_line_error(run("plan", EXAMPLES / "candidates.csv", "--budget", "1", "--seed", str(2**32)), "--seed")


def test_large_counts_within_range_are_fine(run):
    result = run("rank", EXAMPLES / "candidates.csv", "--top-k", "1000000", "--format", "json")
    assert result.exit_code == 0, result.stderr


def test_no_arguments_prints_the_help_and_exits_0(run):
    result = run()
    assert result.exit_code == 0
    assert "Usage:" in result.stdout and "rank" in result.stdout and "Error" not in result.output


# Streams, in real processes: pipes and closed descriptors cannot be simulated in-process.

BASEPICK = [sys.executable, "-c", "import sys, cli; sys.argv = ['basepick'] + sys.argv[1:]; cli.main()"]


def _pipe_to_head(args: list[str]) -> subprocess.CompletedProcess:
    """``basepick ARGS | head -c 1``: the reader leaves after one byte."""
    producer = subprocess.Popen(BASEPICK + args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    producer.stdout.read(1)
    producer.stdout.close()  # the reader is gone: every later write gets EPIPE
    stderr = producer.stderr.read().decode()
    return subprocess.CompletedProcess(args, producer.wait(), "", stderr)


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_a_reader_that_goes_away_ends_the_command_quietly_with_0(fmt):
    result = _pipe_to_head(["rank", "--pool", "leaderboard", "--format", fmt])
    assert result.returncode == 0, result.stderr
    assert "Error" not in result.stderr and "Traceback" not in result.stderr


def test_evaluate_piped_to_head_exits_0():
    result = _pipe_to_head(["evaluate", "--bootstrap", "0", "--no-baselines"])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_closed_or_full_stdout_is_one_line_exit_2(fmt):
    args = BASEPICK + ["rank", str(EXAMPLES / "candidates.csv"), "--format", fmt]
    closed = subprocess.run(["bash", "-c", 'exec "$@" >&-', "basepick", *args], cwd=REPO, stderr=subprocess.PIPE,
                            text=True)  # the shell closes fd 1, then runs the command (no fork from this process)
    full = subprocess.run(args, cwd=REPO, stdout=open("/dev/full", "w"), stderr=subprocess.PIPE, text=True)
    for result, cause in ((closed, "standard output is closed"), (full, "No space left on device")):
        errors = [line for line in result.stderr.splitlines() if not line.startswith("note:")]
        assert result.returncode == 2 and len(errors) == 1 and cause in errors[0], result.stderr
