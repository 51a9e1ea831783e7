"""`gencli eval`: metrics and figures of trained runs, and a table across runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gencli.cli.common import (
    DeviceOpt,
    LabelOpt,
    SeedOpt,
    SetOpt,
    check_count,
    complete_runs,
    examples,
    handle_errors,
    inference_device,
    model_options,
    one_label,
)
from gencli.errors import UserError

EPILOG = examples(
    "gencli eval RUN",
    "gencli eval RUN --metrics fid,kid --n 5000 --fid-weights pt_inception.pth",
    "gencli eval RUN --features net.pt --set KEY=VALUE   # the model's eval options",
    "gencli eval RUN_A RUN_B --compare",
)


@handle_errors
def eval_(
    runs: Annotated[list[str], typer.Argument(help="Run directory (or several with --compare).", autocompletion=complete_runs,
                                              show_default=False)],
    metrics: Annotated[Optional[str], typer.Option(
        "--metrics", help="Comma-separated: fid, kid, prdc, fid-class, accuracy, mse, psnr, ssim, or a plugin's.",
        show_default="what fits the model")] = None,
    n: Annotated[int, typer.Option("--n", help="Generated images for FID-style metrics.")] = 10000,
    data: Annotated[Optional[str], typer.Option("--data", help="Real data to compare with.", show_default="the run's")] = None,
    split: Annotated[str, typer.Option("--split", help="Real-data split: train or test.")] = "test",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Batch size for generation and features.")] = 100,
    fid_weights: Annotated[Optional[str], typer.Option("--fid-weights", help="Local FID Inception weights (pt_inception-2015-12-05-6726825d.pth).",
                                                       show_default=False)] = None,
    features: Annotated[Optional[str], typer.Option("--features", help="TorchScript feature network instead of Inception.",
                                                    show_default=False)] = None,
    classifier: Annotated[Optional[str], typer.Option("--classifier", help="TorchScript classifier for class accuracy.",
                                                      show_default=False)] = None,
    label: LabelOpt = None,
    set_: SetOpt = None,
    compare: Annotated[bool, typer.Option("--compare", help="Print one table of the stored results of several runs.")] = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Evaluate trained models: FID, KID, precision/recall, reconstruction metrics and figures."""
    from gencli.commands import evaluate as ev

    if compare:
        rows = ev.compare([Path(r) for r in runs])
        if json_out:
            print(json.dumps(rows, indent=2))
        else:
            ev.render_compare(rows)
        return
    if len(runs) != 1:
        raise UserError("give one run to evaluate, or --compare with several")
    check_count(n, "--n", limit=1_000_000)
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    from gencli.runs import Run

    run = Run.open(runs[0])
    cls = run.model_class()
    options = model_options(cls, cls.eval_options(), set_, "eval")
    index = None
    if label is not None:
        probe = _LabelProbe(cls, run.classes)
        index = one_label(probe, label)
    result = ev.evaluate(run.dir, [m.strip() for m in metrics.split(",")] if metrics else None, n, data, split,
                         batch_size, inference_device(device), fid_weights, features, classifier, index, seed,
                         sample_options=options)
    if json_out:
        print(json.dumps(result, indent=2, default=str))
    else:
        ev.render_result(result)


class _LabelProbe:
    """What the label parser reads of a model, known before the model is built."""

    def __init__(self, cls: type, classes: list[str]) -> None:
        self.name, self.conditional, self.classes, self.num_classes = cls.name, cls.conditional, classes, len(classes)
