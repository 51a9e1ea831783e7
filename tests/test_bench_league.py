"""benchmarks/bench_league.py: reading its FD-over-minutes curves (lines reached, FD at equal minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_league  # noqa: E402

CURVE = [{"minutes": 1.02, "fd": 80.0}, {"minutes": 5.1, "fd": 30.0}, {"minutes": 10.3, "fd": 12.0},
         {"minutes": 30.2, "fd": 14.0}]


def test_a_line_is_reached_at_the_first_snapshot_at_or_below_it():
    assert bench_league.crossing_minutes(CURVE, 30.0) == 5.1
    assert bench_league.crossing_minutes(CURVE, 13.0) == 10.3
    assert bench_league.crossing_minutes(list(reversed(CURVE)), 13.0) == 10.3  # by minutes, not list order
    assert bench_league.crossing_minutes(CURVE, 11.9) is None


def test_fd_at_equal_minutes_takes_the_last_snapshot_taken_by_then():
    assert bench_league.fd_at(CURVE, 10) == 12.0  # 10.3 lands a step after the 10-minute mark
    assert bench_league.fd_at(CURVE, 30) == 14.0  # the last one, not the best
    assert bench_league.fd_at(CURVE, 20) == 12.0
    assert bench_league.fd_at(CURVE, 0.5) is None


def test_the_headline_divides_gencli_s_fd_by_the_peer_s_at_each_mark():
    peer = {"kind": "peer", "name": "peer", "points": [{"minutes": 5.0, "fd": 40.0}, {"minutes": 10.0, "fd": 20.0}]}
    ours = {"kind": "gencli", "name": "gencli vae", "points": [{"minutes": 5.1, "fd": 10.0}, {"minutes": 10.2, "fd": 30.0}]}
    alone = {"kind": "gencli", "name": "gencli cvae", "points": [{"minutes": 10.0, "fd": 5.0}]}
    lines = bench_league.headline([{"name": "vae", "sides": [peer, ours]}, {"name": "cvae", "sides": [alone]}], [5, 10])
    row = next(line for line in lines if line.startswith("| vae"))
    assert "**0.25**" in row and "**1.50**" in row
    assert not any(line.startswith("| cvae") for line in lines)  # no peer, no ratio
    failed = {"kind": "peer", "name": "peer", "error": "no torch._six"}
    assert bench_league.headline([{"name": "sngan", "sides": [failed, ours]}], [5, 10]) == []


def test_a_section_is_rendered_again_from_a_runs_json(tmp_path):
    import json

    from results import machine

    run = {"argv": [], "machine": machine(), "load_start": 0.1, "quick": False,
           "parallel": 2, "judge": {"test_accuracy": 0.91, "floor_fd": 0.15, "classes": [str(k) for k in range(10)],
                                    "per_class_accuracy": [0.9] * 10},
           "floor": 3.0, "n": 2000, "minutes": 10.0, "at": [5.0, 10.0],
           "pairs": [{"name": "vae", "family": "vae", "note": "", "n": 2000, "floor": 3.0, "sides": [
               {"kind": "peer", "name": "pythae VAE", "version": "0.1.2", "steps": 10, "batch": 64, "images_per_s": 5.0,
                "peak_rss_mib": 100.0, "settings": "its defaults", "points": [{"minutes": 10.0, "step": 10, "fd": 60.0}]},
               {"kind": "gencli", "name": "gencli vae", "version": "gencli 0.1.0", "steps": 99, "batch": 64,
                "images_per_s": 50.0, "peak_rss_mib": 100.0, "settings": "defaults",
                "points": [{"minutes": 10.0, "step": 99, "fd": 30.0}]}]}]}
    (tmp_path / "league.json").write_text(json.dumps(run))
    out = tmp_path / "RESULTS.md"
    out.write_text("# Results\n")
    assert bench_league.main(["--render", str(tmp_path / "league.json"), "--write", str(out)]) == 0
    text = out.read_text()
    assert "30.0 / 60.0 = **0.50**" in text and "pythae VAE" in text


def test_a_tagged_league_gets_its_own_section_beside_the_first(tmp_path):
    import json

    from results import machine

    def run(minutes: float, fd: float, tag: str = "") -> dict:
        side = {"kind": "gencli", "name": "gencli cvae", "version": "gencli 0.1.0", "steps": 9, "batch": 64,
                "images_per_s": 5.0, "peak_rss_mib": 100.0, "settings": "defaults",
                "points": [{"minutes": minutes, "step": 9, "fd": fd}]}
        return {"argv": [], "machine": machine(), "load_start": 0.1, "quick": False, "parallel": 2, "tag": tag,
                "judge": {"test_accuracy": 0.91, "floor_fd": 0.15, "classes": [str(k) for k in range(10)],
                          "per_class_accuracy": [0.9] * 10},
                "floor": 3.0, "n": 2000, "minutes": minutes, "at": [minutes],
                "pairs": [{"name": "cvae", "family": "vae", "note": "", "n": 2000, "floor": 3.0, "sides": [side]}]}

    out = tmp_path / "RESULTS.md"
    out.write_text("# Results\n")
    for name, r in (("ten", run(10.0, 61.5)), ("thirty", run(30.0, 42.25, "30 minutes")), ("again", run(10.0, 55.5))):
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
        assert bench_league.main(["--render", str(tmp_path / f"{name}.json"), "--write", str(out)]) == 0
    text = out.read_text()
    assert text.count(f"## {bench_league.TITLE}\n") == 1 and text.count(f"## {bench_league.TITLE} (30 minutes)\n") == 1
    assert "55.5" in text and "61.5" not in text  # the untagged section was replaced, the tagged one kept
    assert "42.2" in text
    assert bench_league.tag_slug("30 minutes") == "30-minutes"


def test_a_quick_run_draws_its_figures_in_its_work_folder_never_over_the_league_s(tmp_path):
    assert bench_league.figure_folder(tmp_path, quick=True, tag="") == tmp_path / "figures"
    assert bench_league.figure_folder(tmp_path, quick=True, tag="30 minutes") == tmp_path / "figures"
    assert bench_league.figure_folder(tmp_path, quick=False, tag="") == bench_league.FIGURES
    assert bench_league.figure_folder(tmp_path, quick=False, tag="30 minutes") == bench_league.FIGURES / "30-minutes"


def _run(pairs: list[tuple[str, float]], sha: str = "abc", argv: tuple[str, ...] = ()) -> dict:
    from results import machine

    def pair(name: str, fd: float) -> dict:
        side = {"kind": "gencli", "name": f"gencli {name}", "version": "gencli 0.1.0", "steps": 9, "batch": 64,
                "images_per_s": 5.0, "peak_rss_mib": 100.0, "settings": "defaults",
                "points": [{"minutes": 10.0, "step": 9, "fd": fd}]}
        return {"name": name, "family": "gan", "note": "", "n": 2000, "floor": 3.0, "sides": [side]}

    return {"argv": list(argv), "machine": machine(), "load_start": 0.4, "quick": False, "parallel": 2, "tag": "",
            "judge": {"sha256": sha, "test_accuracy": 0.91, "floor_fd": 0.15, "classes": [str(k) for k in range(10)],
                      "per_class_accuracy": [0.9] * 10},
            "floor": 3.0, "n": 2000, "minutes": 10.0, "at": [10.0], "pairs": [pair(n, fd) for n, fd in pairs]}


def test_a_later_run_s_pairs_replace_the_rendered_run_s_and_say_where_they_came_from(tmp_path):
    import json

    base, later = tmp_path / "base.json", tmp_path / "later.json"
    base.write_text(json.dumps(_run([("dcgan", 40.5), ("ssgan", 148.25)])))
    later.write_text(json.dumps(_run([("ssgan", 99.75), ("cgan", 11.5)], argv=("--only", "ssgan,cgan"))))
    out = tmp_path / "RESULTS.md"
    assert bench_league.main(["--render", str(base), "--merge", str(later), "--write", str(out)]) == 0
    text = out.read_text()
    assert "40.5" in text and "99.75" in text and "11.5" in text and "148.25" not in text
    assert "- ssgan: ran in a later run (`python benchmarks/bench_league.py --only ssgan,cgan`" in text
    assert "- dcgan: ran in a later run" not in text


def test_runs_judged_by_different_judges_are_not_merged(tmp_path, capsys):
    import json

    base, later = tmp_path / "base.json", tmp_path / "later.json"
    base.write_text(json.dumps(_run([("dcgan", 40.5)])))
    later.write_text(json.dumps(_run([("ssgan", 99.75)], sha="other")))
    out = tmp_path / "RESULTS.md"
    out.write_text("# Results\n")
    assert bench_league.main(["--render", str(base), "--merge", str(later), "--write", str(out)]) == 2
    assert "cannot merge a run with another judge" in capsys.readouterr().err
    assert out.read_text() == "# Results\n"


def test_a_merged_pair_keeps_its_own_note_before_where_it_came_from(tmp_path):
    later = _run([("cgan", 11.5)], argv=("--only", "cgan"))
    later["pairs"][0]["note"] = "judged alone."
    merged = bench_league.merge(_run([("dcgan", 40.5)]), later)
    note = {p["name"]: p["note"] for p in merged["pairs"]}["cgan"]
    assert note.startswith("judged alone. This pair ran in a later run (`python benchmarks/bench_league.py --only cgan`")
    assert note.endswith("images per snapshot.")
