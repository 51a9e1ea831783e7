"""The generated CLI reference matches the app; the scripting surface (--json, completion, --version) works."""

from __future__ import annotations

import difflib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_cli_md_is_up_to_date_with_the_app():
    generated = _script().render()
    on_disk = (ROOT / "docs" / "cli.md").read_text()
    if generated != on_disk:
        diff = "".join(difflib.unified_diff(on_disk.splitlines(True), generated.splitlines(True),
                                            "docs/cli.md", "generated", n=1))
        pytest.fail(f"docs/cli.md is out of date: run `python scripts/cli_reference.py`\n{diff[:3000]}")


def test_every_command_argument_and_option_is_in_the_reference():
    import typer.main

    from gencli.cli import app

    text = _script().render()
    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        assert f"## gencli {name}\n" in text
        section = text.split(f"## gencli {name}\n", 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            if param.param_type_name == "argument":
                assert param.name.upper() in section, (name, param.name)
            else:
                for opt in param.opts + param.secondary_opts:
                    assert opt in section, (name, opt)
            if param.help:
                assert " ".join(param.help.split()).replace("|", "\\|") in section, (name, param.name)


def test_commands_from_third_party_plugins_are_left_out():
    from gencli.cli import app

    def shout() -> None:
        """Say something loudly."""

    shout.__module__ = "gencli_someone_else.commands"
    app.command("shout")(shout)
    try:
        text = _script().render()
    finally:
        app.registered_commands.pop()
    assert "shout" not in text and "## gencli train\n" in text


def test_check_mode_reports_a_stale_reference(tmp_path, monkeypatch, capsys):
    script = _script()
    monkeypatch.setattr(script, "OUTPUT", tmp_path / "cli.md")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    (tmp_path / "cli.md").write_text("# stale\n")
    assert script.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert script.main([]) == 0 and script.main(["--check"]) == 0


@pytest.mark.parametrize("command", ["models", "datasets", "plugins"])
def test_json_listings_parse_for_scripts(cli, command):
    result = cli("-q", command, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and rows and all(isinstance(r, dict) and r.get("name") for r in rows)


def test_shell_completion_and_version():
    import os

    from gencli import __version__

    # typer detects the shell from the parent processes, which a detached test run may not have;
    # its documented switch for tests makes --show-completion take the shell by name instead
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    run = lambda *args: subprocess.run([sys.executable, "-m", "gencli", *args], capture_output=True, text=True,  # noqa: E731
                                       timeout=120, env=env)
    completion = run("--show-completion", "bash")
    assert completion.returncode == 0 and "complete -o default -F _gencli_completion gencli" in completion.stdout
    assert run("--version").stdout.strip() == f"gencli {__version__}"


def test_model_pages_hyperparameter_tables_match_the_models():
    spec = importlib.util.spec_from_file_location("model_docs", ROOT / "scripts" / "model_docs.py")
    model_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_docs)
    stale = []
    for page in sorted((ROOT / "docs" / "models").glob("*.md")):
        text = page.read_text()
        if model_docs.render(text) != text:
            stale.append(page.name)
    assert not stale, f"hyperparameter tables out of date in {stale}: run `python scripts/model_docs.py`"


def test_model_tables_are_the_models_own_fields():
    spec = importlib.util.spec_from_file_location("model_docs", ROOT / "scripts" / "model_docs.py")
    model_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_docs)
    table = model_docs.table("vae")
    from gencli.models.hparams import fields
    from gencli.plugins import registry

    names = [line.split("|")[1].strip(" `") for line in table.splitlines()[2:]]
    assert names == list(fields(registry().model("vae").load().Hyperparameters))
    assert model_docs.table("no-such-model") is None


def test_help_keeps_square_brackets_and_ends_with_examples():
    r = subprocess.run([sys.executable, "-m", "gencli", "train", "--help"], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "COLUMNS": "200"})
    assert "[hyperparameters]" in r.stdout  # not eaten as Rich markup
    import typer.main

    from gencli.cli import app

    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        examples = [line for line in (command.epilog or "").splitlines()[1:] if line.strip().startswith("gencli")]
        assert 2 <= len(examples) <= 4, f"gencli {name} --help should end with two to four examples"
