"""Tab completion answered before Typer is imported (gencli.completion), and always as Typer would answer.

The fast path reads the line with a table derived from the Typer app; these tests keep the table
equal to the app, compare both paths' output byte for byte over many lines and every shell the
fast path speaks, and check in a fresh interpreter that the common completions import neither
Typer nor torch. Timings live in benchmarks/bench_startup.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

import pytest
from cli_helpers import probe_cli

from gencli import completion
from gencli.cli import completion_table

LINES = [
    "gencli train v", "gencli train ", "gencli train vae --set ", "gencli train vae --set lr=1 --set ",
    "gencli train vae --set recon=", "gencli -q train vae --set re", "gencli --threads 2 train d",
    "gencli --debug --threads=2 train w", "gencli train vae --data shapes-", "gencli train --data mnist v",
    "gencli train vae --data=mn", "gencli train vae ", "gencli train vae x", "gencli train vae --steps ",
    "gencli train vae --out ", "gencli train vae --json --set b", "gencli train vae --resume ",
    "gencli train --resume runs/none --set ", "gencli sample ", "gencli sample vae --figure ",
    "gencli sample stylegan --figure style-mix --set ", "gencli sample stylegan --set ", "gencli interpolate ddpm --set ",
    "gencli eval ddpm --set ", "gencli eval vae dcgan --set ", "gencli export vae --format ", "gencli export vae --format o",
    "gencli models --info c", "gencli datasets --info mn", "gencli datasets --prepare shapes",
    # lines the fast path leaves to Typer: option and command names, groups, unknown options, "--"
    "gencli tr", "gencli ", "gencli train vae --s", "gencli train vae --set=", "gencli plugins ", "gencli train -- ",
    "gencli train vae --no-such ", "gencli --threads ", 'gencli train "va',
]


def shell_envs(line: str) -> list[dict[str, str]]:
    words = line.split(" ")
    return [
        {"_GENCLI_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)},
        {"_GENCLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": line},
        {"_GENCLI_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": line, "_TYPER_COMPLETE_FISH_ACTION": "get-args"},
        {"_GENCLI_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": line, "_TYPER_COMPLETE_FISH_ACTION": "is-args"},
    ]


def typer_answer(monkeypatch, env: dict[str, str]) -> tuple[int, str]:
    from gencli.cli import main

    for key in ("COMP_WORDS", "COMP_CWORD", "_TYPER_COMPLETE_ARGS", "_TYPER_COMPLETE_FISH_ACTION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["gencli"])
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main()
    code = exit_info.value.code or 0
    return code, out.getvalue()


def fast_answer(env: dict[str, str]) -> tuple[int, str] | None:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            answered = completion.answer(env)
    except SystemExit as exc:
        return exc.code or 0, out.getvalue()
    return (0, out.getvalue()) if answered else None


def test_the_table_ships_in_the_package():
    import tomllib

    pyproject = tomllib.loads((completion.TABLE_FILE.parents[1] / "pyproject.toml").read_text())
    assert completion.TABLE_FILE.name in pyproject["tool"]["setuptools"]["package-data"]["gencli"]


def test_the_table_is_the_typer_apps():
    assert completion_table.main(["--check"]) == 0, "run `python -m gencli.cli.completion_table`"


@pytest.mark.parametrize("line", LINES)
def test_the_fast_path_answers_as_typer_does(monkeypatch, tmp_path, line):
    monkeypatch.chdir(tmp_path)  # runs/ and relative paths: an empty folder for both paths
    for env in shell_envs(line):
        fast = fast_answer(env)
        if fast is not None:
            assert fast == typer_answer(monkeypatch, env), (line, env)


def test_the_fast_path_answers_the_common_completions():
    answered = [line for line in LINES if fast_answer(shell_envs(line)[0]) is not None]
    assert len(answered) >= 28, answered
    # and leaves option names, command names and groups to Typer
    for line in ("gencli tr", "gencli train vae --s", "gencli plugins ", "gencli train -- "):
        assert fast_answer(shell_envs(line)[0]) is None, line


def test_a_run_on_the_line_completes_its_models_options_on_both_paths(monkeypatch, tmp_path):
    run = tmp_path / "runs" / "stylegan-shapes"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "gencli_version": "0.1.0", "model": "stylegan", "hyperparameters": {}, "data": {"image_shape": [3, 16, 16]},
        "training": {}}))
    monkeypatch.chdir(tmp_path)
    for line, expected in ((f"gencli sample {run} --set ", ["truncation=", "noise="]),
                           (f"gencli sample {run} --figure ", ["style-mix"]),
                           ("gencli sample runs/stylegan-shapes --set tr", ["truncation="]),
                           ("gencli sample runs/sty", ["runs/stylegan-shapes"])):
        env = shell_envs(line)[0]
        fast = fast_answer(env)
        assert fast is not None and fast[1].split() == expected, line
        assert fast == typer_answer(monkeypatch, env)


@pytest.mark.parametrize("line", ["gencli train v", "gencli train vae --set ", "gencli train vae --data mn",
                                  "gencli sample ddpm --set ", "gencli sample stylegan --figure "])
def test_common_completions_import_neither_typer_nor_torch(line):
    result = probe_cli([], shell_envs(line)[0])
    assert result["code"] == 0 and result["out"].strip(), result
    assert result["typer"] is False and result["torch"] is False, result


def test_option_names_still_complete_through_the_entry_point():
    result = probe_cli([], shell_envs("gencli train vae --se")[0])
    assert result["out"].split() == ["--seed", "--set"] and result["typer"] is True


def test_a_damaged_table_leaves_the_answer_to_typer(monkeypatch, tmp_path):
    bad = tmp_path / "table.json"
    bad.write_text("{not json")
    monkeypatch.setattr(completion, "TABLE_FILE", bad)
    assert fast_answer(shell_envs("gencli train v")[0]) is None
