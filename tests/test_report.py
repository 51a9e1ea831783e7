"""`gencli report`: one self-contained HTML page per run or comparison, checked in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1280, 2000)
TINY = {"widths": "8,16"}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny VAE runs that differ in one hyperparameter (latent_dim); the first also holds a
    quality line and a `gencli eval` line, as a run trained with --eval-every and evaluated would."""
    from gencli.runs import Run
    from gencli.training.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("report-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENCLI_DATA_DIR", str(root / "data"))
        mp.setenv("GENCLI_RUNS_DIR", str(root / "runs"))
        runs = [train(TrainConfig(model="vae", data="shapes", steps=4, image_size=8, channels=3, batch_size=8,
                                  log_every=2, sample_every=2, checkpoint_every=4, device="cpu", quiet=True,
                                  overrides={**TINY, "latent_dim": str(latent)}, out=root / name))
                for name, latent in (("small-latent", 4), ("large-latent", 8))]
    first = Run.open(runs[0])
    first.append_metrics({"step": 4, "epoch": 0, "quality": {"fid": 80.5}})
    first.append_metrics({"eval": {"fid": 75.25, "kid": 0.05}, "settings": {"step": 4, "n": 100, "split": "test"}})
    return runs


def _stranger_run(folder: Path, hyperparameters: dict | None = None, rows: list[dict] | None = None) -> Path:
    """A run folder written by hand, as someone else might hand one over (no checkpoint, no samples)."""
    folder.mkdir(parents=True)
    info = {"gencli_version": "0.1.0", "model": "vae", "hyperparameters": hyperparameters or {"latent_dim": 4},
            "data": {"spec": "shapes", "image_shape": [3, 16, 16]}, "training": {"seed": 0}, "step": 2}
    (folder / "run.json").write_text(json.dumps(info))
    lines = rows if rows is not None else [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def _open_in_chromium(page: Path, work: Path) -> tuple[str, str, Path]:
    """Load ``page`` in headless Chromium; return (its DOM after the load event, the browser's log, a screenshot)."""
    shot = work / f"{page.stem}.png"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={work / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr, shot


def _check_loaded(dom: str, log: str, shot: Path) -> None:
    from PIL import Image

    assert "</body>" in dom and "gencli" in dom  # the page loaded
    console = [line for line in log.splitlines() if "CONSOLE" in line]
    assert not console, console  # no script error, no request blocked by the page's policy
    # the page's own script ran (the policy allows exactly it) and found every image decoded
    assert 'data-images-ok="true"' in dom
    with Image.open(shot) as image:
        assert image.size == WINDOW


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; CI installs it)")
def test_reports_open_in_a_real_browser_with_every_image_and_the_differences_highlighted(two_runs, cli, tmp_path):
    first, second = two_runs
    single = cli("report", first)
    assert single.exit_code == 0, single.stderr
    assert Path(single.stdout.strip()) == first / "report.html"
    both = cli("report", first, second, "--out", tmp_path / "compare.html", "--json")
    assert both.exit_code == 0, both.stderr
    assert json.loads(both.stdout) == {"report": str(tmp_path / "compare.html")}

    dom, log, shot = _open_in_chromium(first / "report.html", tmp_path)
    _check_loaded(dom, log, shot)
    # loss curves, quality curve, every sample grid (steps 2 and 4) and the progress GIF
    assert len(re.findall(r"<img src=\"data:image/", dom)) == 5
    assert "step 4" in dom and "75.25" in dom  # the last eval line is among the final metrics

    dom, log, shot = _open_in_chromium(tmp_path / "compare.html", tmp_path)
    _check_loaded(dom, log, shot)
    assert len(re.findall(r"<img src=\"data:image/", dom)) == 1 + 5 + 4  # side-by-side losses, each run (no quality curve in the second)
    assert re.search(r'<tr class="differs"><th>latent_dim</th><td>4</td><td>8</td></tr>', dom)
    assert re.search(r"<tr><th>widths</th><td>\[8, 16\]</td><td>\[8, 16\]</td></tr>", dom)  # the same: plain


def test_hostile_names_and_values_are_inert_text(tmp_path):
    from gencli.report import write_report

    hostile = "<script>alert(1)</script>"
    run = _stranger_run(tmp_path / '"><img src=x onerror=alert(2)>',
                        hyperparameters={"latent_dim": hostile, hostile: "x", "note": "a & b"},
                        rows=[{"step": 1, "loss$\\alpha$": 2.0, hostile: 1.0}, {"step": 2, "loss$\\alpha$": 1.0, hostile: 0.5}])
    page = write_report([str(run)]).read_text()
    assert page.count("<script") == 1  # the page's own, and nothing from the run
    assert "<img src=x" not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "a &amp; b" in page
    assert "No sample grids yet" in page  # a run without samples still gets its page


def test_the_page_allows_no_request_and_no_other_script(tmp_path):
    import base64
    import hashlib

    from gencli.report import SCRIPT, write_report

    page = write_report([str(_stranger_run(tmp_path / "run"))]).read_text()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    assert "default-src 'none'" in policy and "img-src data:" in policy and f"script-src 'sha256-{digest}'" in policy
    assert not re.search(r"(src|href)=\"(?!data:|#)", page)  # every image inline, every link inside the page


def test_several_runs_without_out_write_report_html_in_the_current_folder(tmp_path, monkeypatch, cli):
    a, b = _stranger_run(tmp_path / "a"), _stranger_run(tmp_path / "b", {"latent_dim": 8})
    monkeypatch.chdir(tmp_path)
    first, second = cli("report", a, b), cli("report", a, b)
    assert first.exit_code == second.exit_code == 0
    assert (first.stdout.strip(), second.stdout.strip()) == ("report.html", "report-2.html")  # never overwritten
    assert '<tr class="differs"><th>latent_dim</th>' in (tmp_path / "report.html").read_text()


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(cli, *args) -> str:
    result = cli("report", *map(str, args))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    return result.stderr


def test_bad_inputs_end_in_one_line_and_change_nothing(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    assert "not a gencli run" in _refused(cli, tmp_path / "empty")
    assert "does not exist" in _refused(cli, tmp_path / "missing")
    fresh = _stranger_run(tmp_path / "fresh", rows=[])
    assert "no metrics yet" in _refused(cli, fresh)

    run = _stranger_run(tmp_path / "run")
    (run / "samples").mkdir()
    (run / "samples" / "step-00000002.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 10)
    taken = tmp_path / "taken.html"
    taken.write_text("mine")
    before = _listing(tmp_path)
    assert "step-00000002.png' is not a readable PNG image" in _refused(cli, run)
    (run / "samples" / "step-00000002.png").unlink()
    (run / "samples" / "step-00000002.png").symlink_to(tmp_path / "fresh" / "run.json")
    assert "is a link" in _refused(cli, run)
    (run / "samples" / "step-00000002.png").unlink()
    (run / "progress.gif").write_bytes(b"GIF89a" + b"\0" * 20)
    assert "progress.gif' is not a readable GIF image" in _refused(cli, run)
    (run / "progress.gif").unlink()

    assert "already exists" in _refused(cli, run, "--out", taken)
    assert "needs the suffix .html" in _refused(cli, run, "--out", tmp_path / "page.txt")
    assert "is a folder" in _refused(cli, run, "--out", tmp_path / "empty")
    before.pop("run/samples/step-00000002.png")
    assert _listing(tmp_path) == before  # nothing written, nothing removed


def test_oversized_images_are_refused_before_they_are_decoded(tmp_path, cli, monkeypatch):
    from PIL import Image

    import gencli.report

    run = _stranger_run(tmp_path / "run")
    (run / "samples").mkdir()
    Image.effect_noise((64, 64), 50).save(run / "samples" / "step-00000002.png")
    with monkeypatch.context() as mp:
        mp.setattr(gencli.report, "MAX_IMAGE_BYTES", 1000)
        assert "larger than" in _refused(cli, run)
    monkeypatch.setattr(gencli.report, "MAX_IMAGE_PIXELS", 64 * 63)
    assert "64 x 64 pixels, more than a report inlines" in _refused(cli, run)


def test_a_long_run_shows_its_sample_grids_evenly_spread():
    from gencli.report import spread

    assert spread(list(range(5)), 12) == [0, 1, 2, 3, 4]
    picked = spread(list(range(100)), 12)
    assert len(picked) == 12 and picked[0] == 0 and picked[-1] == 99


def test_the_report_needs_no_torch(tmp_path):
    run = _stranger_run(tmp_path / "run")
    code = ("import sys; from gencli.report import write_report; write_report([sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "report.html").is_file()
