"""benchmarks/bench_class_fidelity.py: its arguments, the class each class is taken for, its table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_class_fidelity as fidelity  # noqa: E402


def test_a_configuration_is_a_name_and_its_settings():
    assert fidelity.parse_config("beta 0.25:beta=0.25;widths=32,64") == ("beta 0.25", ["beta=0.25", "widths=32,64"])
    assert fidelity.parse_config("default:") == ("default", [])
    with pytest.raises(argparse.ArgumentTypeError, match="no name"):
        fidelity.parse_config(":beta=2")
    assert fidelity.parse_option("temperature=0.6,1") == ("temperature", [0.6, 1.0])
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=NUMBER"):
        fidelity.parse_option("temperature=warm")


def test_each_class_is_taken_for_the_class_it_is_most_often_misread_as():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    predicted = torch.tensor([0, 4, 4, 1, 1, 3, 5, 5])
    assert fidelity.taken_for(predicted, labels)[:3] == [4, None, 5]


def test_the_table_marks_the_classes_at_the_bar_and_names_the_confusions():
    bar = [0.9] * 10
    config = {"name": "default", "sets": [], "steps": 4685, "seconds": 210.0,
              "samples": [{"value": 0.6, "per_class": [0.95] * 9 + [0.5], "taken_for": [None] * 9 + [7]}],
              "recon": {"per_class": [0.9] * 10, "taken_for": [None] * 10}}
    from results import machine

    r = {"argv": ["--model", "cvae"], "machine": machine(), "load_start": 0.5, "model": "cvae", "epochs": 5,
         "minutes": 0.0, "parallel": 2, "n": 100, "option": ["temperature", [0.6]], "configs": [config],
         "judge": {"test_accuracy": 0.909, "classes": [f"c{k}" for k in range(10)], "per_class_accuracy": bar}}
    text = fidelity.report(r)
    row = next(line for line in text.splitlines() if line.startswith("| default: samples, temperature 0.6"))
    assert row.count("**95%**") == 9 and "| 50% |" in row and row.endswith("| 9/10 |")
    assert "| default: reconstructions |" in text and "10/10" in text
    assert "c9 -> c7" in text and "4,685 steps" in text


def test_a_configuration_that_fails_to_train_is_reported_with_its_error(tmp_path):
    args = argparse.Namespace(work=tmp_path, data="shapes", seed=0, epochs=1, minutes=0.0)
    result = fidelity.train("cvae", "broken", ["no_such_key=1"], args, None)
    assert result["exit"] == 2 and "no_such_key" in result["error"]


def test_a_tagged_run_gets_its_own_heading():
    from results import machine

    r = {"argv": ["--tag", "x"], "machine": machine(), "load_start": 0.5, "model": "cvae", "epochs": 5,
         "minutes": 0.0, "parallel": 2, "n": 100, "option": None, "configs": [], "tag": "the fitted prior",
         "judge": {"test_accuracy": 0.909, "classes": [f"c{k}" for k in range(10)], "per_class_accuracy": [0.9] * 10}}
    assert fidelity.report(r).startswith(f"## {fidelity.TITLE} (the fitted prior)\n")
    assert fidelity.report({**r, "tag": ""}).startswith(f"## {fidelity.TITLE}\n")
