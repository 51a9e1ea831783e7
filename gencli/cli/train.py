"""`gencli train`: train a model and write a run directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gencli.cli.common import (
    complete_datasets,
    complete_hyperparameters,
    complete_models,
    complete_runs,
    examples,
    handle_errors,
    print_result,
    results_only,
    state,
)
from gencli.errors import UserError

TRAIN_PANEL = "Training"
DATA_PANEL = "Data"
RUN_PANEL = "Run directory"
SYSTEM_PANEL = "Device and precision"
QUALITY_PANEL = "Sample quality while training"

EPILOG = examples(
    "gencli train vae",
    "gencli train MODEL --data mnist --epochs 10 --set lr=1e-3",
    "gencli train MODEL --from RUN",
    "gencli train --resume runs/vae-shapes-20261129-101500 --steps 2000",
)


@handle_errors
def train(
    model: Annotated[Optional[str], typer.Argument(help="Model name (see `gencli models`); omit with --resume or --config.",
                                                   autocompletion=complete_models, show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="Dataset name, folder, or A,B to label by source.",
                                                rich_help_panel=DATA_PANEL, autocompletion=complete_datasets)] = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", help="Image side in pixels.", rich_help_panel=DATA_PANEL)] = None,
    channels: Annotated[Optional[int], typer.Option("--channels", help="1 (grey) or 3 (colour).", rich_help_panel=DATA_PANEL)] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Train for this many passes over the data.", rich_help_panel=TRAIN_PANEL)] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Train for this many updates (default: the model's).", rich_help_panel=TRAIN_PANEL)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Global batch size.", rich_help_panel=TRAIN_PANEL)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Learning rate (same as --set lr=...).", rich_help_panel=TRAIN_PANEL)] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed: same seed, same run.", rich_help_panel=TRAIN_PANEL,
                                                show_default="0")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", show_default=False, autocompletion=complete_hyperparameters,
                    help="Hyperparameter (repeatable); `gencli models --info MODEL` lists them.", rich_help_panel=TRAIN_PANEL)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file: training options and a \\[hyperparameters] table.",
                                                   rich_help_panel=TRAIN_PANEL)] = None,
    from_run: Annotated[Optional[str], typer.Option("--from", metavar="RUN", help="A finished run that a two-stage model trains on top of.",
                                                    rich_help_panel=TRAIN_PANEL, autocompletion=complete_runs)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory to create (default runs/MODEL-DATA-TIME).",
                                                rich_help_panel=RUN_PANEL)] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue a run from its last checkpoint.", rich_help_panel=RUN_PANEL)] = None,
    sample_every: Annotated[Optional[str], typer.Option("--sample-every", metavar="N|Nep", help="Save a sample grid every N steps, or every N epochs (2ep).",
                                                        rich_help_panel=RUN_PANEL, show_default="the model's; once an epoch with --epochs")] = None,
    checkpoint_every: Annotated[Optional[str], typer.Option("--checkpoint-every", metavar="N|Nep", help="Save a checkpoint every N steps, or every N epochs (2ep).",
                                                            rich_help_panel=RUN_PANEL, show_default=False)] = None,
    eval_every: Annotated[Optional[str], typer.Option("--eval-every", metavar="N|Nep", rich_help_panel=QUALITY_PANEL, show_default=False,
                                                      help="Score sample quality every N steps (or Nep epochs) on held-out data; losses.png gains the curve.")] = None,
    eval_features: Annotated[Optional[str], typer.Option("--eval-features", metavar="FILE", rich_help_panel=QUALITY_PANEL, show_default=False,
                                                         help="TorchScript feature network for that FID.")] = None,
    eval_classifier: Annotated[Optional[str], typer.Option("--eval-classifier", metavar="FILE", rich_help_panel=QUALITY_PANEL, show_default=False,
                                                           help="TorchScript classifier for per-class accuracy (conditional models).")] = None,
    eval_n: Annotated[Optional[int], typer.Option("--eval-n", rich_help_panel=QUALITY_PANEL, show_default="1000",
                                                  help="Generated images per quality score.")] = None,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Also log losses and sample grids for TensorBoard (RUN/tensorboard).",
                                              rich_help_panel=RUN_PANEL)] = False,
    log: Annotated[Optional[str], typer.Option("--log", metavar="NAME,NAME", rich_help_panel=RUN_PANEL, show_default="none",
                                               help="Experiment trackers to send the run to: tensorboard, mlflow, wandb, "
                                                    "or a plugin's (`gencli plugins` lists them).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.", rich_help_panel=SYSTEM_PANEL)] = "auto",
    precision: Annotated[Optional[str], typer.Option("--precision", help="fp32, bf16 or fp16 (autocast).", rich_help_panel=SYSTEM_PANEL,
                                                     show_default="fp32")] = None,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the networks.", rich_help_panel=SYSTEM_PANEL)] = False,
    devices: Annotated[int, typer.Option("--devices", help="Processes to launch with torchrun (data parallel).", rich_help_panel=SYSTEM_PANEL)] = 1,
    sync_bn: Annotated[bool, typer.Option("--sync-bn", help="Synchronise batch norm across processes.", rich_help_panel=SYSTEM_PANEL)] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the run folder and its final losses as JSON; the progress "
                                                          "display goes to stderr.", rich_help_panel=RUN_PANEL)] = False,
) -> None:
    """Train a model; writes a run directory with checkpoints, samples, a GIF and loss curves."""
    from gencli.models.hparams import parse_assignments

    if devices < 1:
        raise UserError(f"--devices must be at least 1, got {devices}")
    if devices > 1 or sync_bn:  # checked before any process is launched
        from gencli.training.device import check_devices, check_sync_bn, resolve_device

        target = resolve_device(device)
        check_devices(devices, target)
        if sync_bn:
            check_sync_bn(target)
    if devices > 1 and "WORLD_SIZE" not in os.environ:
        _launch_torchrun(devices)
        return
    from gencli.training.intervals import parse_interval

    for flag, value in (("--sample-every", sample_every), ("--checkpoint-every", checkpoint_every), ("--eval-every", eval_every)):
        if value is not None:
            parse_interval(value, flag)  # a bad interval is refused before any data is loaded
    from gencli.training.engine import TrainConfig
    from gencli.training.engine import train as run_training

    # as given: which value wins (a flag, the file, the run trained on or resumed, the model's default)
    # is decided once, by gencli.training.settings.resolve
    cfg = TrainConfig(model=model, data=data, image_size=image_size, channels=channels, epochs=epochs, steps=steps,
                      batch_size=batch_size, lr=lr, seed=seed, precision=precision, device=device, compile=compile_,
                      sample_every=sample_every, checkpoint_every=checkpoint_every, source=from_run,
                      overrides=parse_assignments(set_ or []), eval_every=eval_every, eval_features=eval_features,
                      eval_classifier=eval_classifier, eval_n=eval_n, config_file=config, out=out, resume=resume,
                      sync_bn=sync_bn, tensorboard=tensorboard, log=log, quiet=state["quiet"])
    with results_only(json_out):
        run_dir = run_training(cfg)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line for the run, not one per process
        # a closed stdout swallows it: the run is finished all the same
        print_result(json_out, [run_dir], run_summary(run_dir) if json_out else {})


def run_summary(run_dir: Path) -> dict:
    """Return what `train --json` prints: the run folder, its status and step, and its final losses
    (and last quality score, when it was scored while training)."""
    from gencli.runs import Run

    run = Run.open_dir(run_dir)
    quality = [row["quality"] for row in run.metrics() if "quality" in row]
    return {"run": str(run_dir), "model": run.model_name, "status": run.status, "step": run.step,
            "final_losses": run.final_losses or {}, **({"quality": quality[-1]} if quality else {})}


def _launch_torchrun(devices: int) -> None:
    """Re-run this very command under torchrun with ``devices`` processes."""
    import signal
    import subprocess

    cleaned, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if a == "--devices":
            skip = True
            continue
        if a.startswith("--devices="):
            continue
        cleaned.append(a)
    cmd = [sys.executable, "-m", "gencli.training.launch", "--standalone", f"--nproc_per_node={devices}",
           "-m", "gencli", *cleaned]
    # Ctrl-C reaches torchrun and its workers too: they stop cleanly; this process waits for them.
    # The handler is in place before the start (no window for a KeyboardInterrupt here; the child's
    # exec resets it) and the caller's handler is back once they have ended.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        code = subprocess.Popen(cmd).wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    raise typer.Exit(code)
