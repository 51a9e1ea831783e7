"""The gencli command line: thin Typer commands over the layers below.

Nothing here imports torch at module level: `gencli --help`, `gencli models` and
`gencli plugins` stay fast. A ``UserError`` anywhere ends the command with one line on stderr
and exit code 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from gencli import __version__
from gencli.errors import UserError

app = typer.Typer(
    name="gencli",
    help="Train and use generative image models: VAEs, GANs, image translation and diffusion.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_state = {"debug": False, "quiet": False}

TRAIN_PANEL = "Training"
DATA_PANEL = "Data"
RUN_PANEL = "Run directory"
SYSTEM_PANEL = "Device and precision"
MODEL_PANEL = "Model-specific sampling"


def handle_errors(fn):
    """Turn ``UserError`` into one stderr line and exit code 2; KeyboardInterrupt into 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            if _state["debug"]:
                raise
            from gencli.ui.console import error

            error(str(exc))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            if _state["debug"]:
                raise
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        print(f"gencli {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only results and errors."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, metavar="N",
        help="CPU threads for torch's operators (default: one per core; fewer helps on a busy machine)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Train and use generative image models: VAEs, GANs, image translation and diffusion."""
    _state["debug"] = debug or bool(os.environ.get("GENCLI_DEBUG"))
    _state["quiet"] = quiet
    from gencli.ui import console

    console.quiet = quiet  # progress bars obey it wherever they are drawn
    if threads:
        # read by torch when it starts its thread pools, and inherited by torchrun's workers
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)


# --------------------------------------------------------------------------- train
@app.command()
@handle_errors
def train(
    model: Optional[str] = typer.Argument(None, help="Model name (see `gencli models`); omit with --resume or --config."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Dataset name, folder, or A,B to label by source.", rich_help_panel=DATA_PANEL),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Image side in pixels.", rich_help_panel=DATA_PANEL),
    channels: Optional[int] = typer.Option(None, "--channels", help="1 (grey) or 3 (colour).", rich_help_panel=DATA_PANEL),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Train for this many passes over the data.", rich_help_panel=TRAIN_PANEL),
    steps: Optional[int] = typer.Option(None, "--steps", help="Train for this many updates (default: the model's).", rich_help_panel=TRAIN_PANEL),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Global batch size.", rich_help_panel=TRAIN_PANEL),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (same as --set lr=...).", rich_help_panel=TRAIN_PANEL),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same run.", rich_help_panel=TRAIN_PANEL),
    set_: list[str] = typer.Option([], "--set", help="Hyperparameter key=value (repeatable); `gencli models --info MODEL` lists them.", rich_help_panel=TRAIN_PANEL),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with options and a [hyperparameters] table.", rich_help_panel=TRAIN_PANEL),
    from_run: Optional[str] = typer.Option(None, "--from", help="Source run for two-stage models (e.g. vqvae-prior).", rich_help_panel=TRAIN_PANEL),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory to create (default runs/MODEL-DATA-TIME).", rich_help_panel=RUN_PANEL),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue a run from its last checkpoint.", rich_help_panel=RUN_PANEL),
    sample_every: Optional[int] = typer.Option(None, "--sample-every", help="Save a sample grid every N steps.", rich_help_panel=RUN_PANEL),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Save a checkpoint every N steps.", rich_help_panel=RUN_PANEL),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.", rich_help_panel=SYSTEM_PANEL),
    precision: str = typer.Option("fp32", "--precision", help="fp32, bf16 or fp16 (autocast).", rich_help_panel=SYSTEM_PANEL),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the networks.", rich_help_panel=SYSTEM_PANEL),
    devices: int = typer.Option(1, "--devices", help="Processes to launch with torchrun (data parallel).", rich_help_panel=SYSTEM_PANEL),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="Synchronise batch norm across processes.", rich_help_panel=SYSTEM_PANEL),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also log losses and sample grids for TensorBoard (RUN/tensorboard).", rich_help_panel=RUN_PANEL),
) -> None:
    """Train a model; writes a run directory with checkpoints, samples, a GIF and loss curves."""
    from gencli.models.hparams import parse_assignments

    if devices < 1:
        raise UserError(f"--devices must be at least 1, got {devices}")
    if devices > 1 or sync_bn:  # checked before any process is launched
        from gencli.training.engine import check_devices, check_sync_bn, resolve_device

        target = resolve_device(device)
        check_devices(devices, target)
        if sync_bn:
            check_sync_bn(target)
    if devices > 1 and "WORLD_SIZE" not in os.environ:
        _launch_torchrun(devices)
        return
    overrides = parse_assignments(set_)
    if from_run:
        overrides["from_run"] = from_run
    values = dict(model=model, data=data, image_size=image_size, channels=channels, epochs=epochs, steps=steps,
                  batch_size=batch_size, lr=lr, sample_every=sample_every, checkpoint_every=checkpoint_every,
                  overrides=overrides)
    if config is not None:
        from gencli.training.engine import merge_config_file

        values = merge_config_file(values, config)
        values.setdefault("seed", seed)
        values.setdefault("device", device)
        values.setdefault("precision", precision)
    else:
        values = {k: v for k, v in values.items() if v is not None}
        values.update(seed=seed, device=device, precision=precision)
    if seed != 0:
        values["seed"] = seed
    if device != "auto":
        values["device"] = device
    if precision != "fp32":
        values["precision"] = precision
    if resume is None and not values.get("model"):
        raise UserError("name a model to train (see `gencli models`), or --resume RUN")

    from gencli.training.engine import TrainConfig
    from gencli.training.engine import train as run_training

    if resume is not None:
        values["model"] = values.get("model") or ""
    cfg = TrainConfig(out=out, resume=resume, compile=compile_, sync_bn=sync_bn, tensorboard=tensorboard,
                      quiet=_state["quiet"], **values)
    run_dir = run_training(cfg)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line for the run, not one per process
        print(run_dir)


def _launch_torchrun(devices: int) -> None:
    """Re-run this very command under torchrun with ``devices`` processes."""
    import subprocess

    args = [a for a in sys.argv[1:]]
    cleaned, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--devices":
            skip = True
            continue
        if a.startswith("--devices="):
            continue
        cleaned.append(a)
    import signal

    cmd = [sys.executable, "-m", "gencli.training.launch", "--standalone", f"--nproc_per_node={devices}",
           "-m", "gencli", *cleaned]
    proc = subprocess.Popen(cmd)
    # Ctrl-C reaches torchrun and its workers too: they stop cleanly; this process waits for them
    signal.signal(signal.SIGINT, lambda *_: None)
    raise typer.Exit(proc.wait())


# --------------------------------------------------------------------------- sample
def _parse_label(model, label: Optional[str], n: int):
    """Return a LongTensor of ``n`` copies of ``label`` (index or class name), or None."""
    if label is None:
        return None
    import torch

    if not model.conditional or model.num_classes == 0:
        why = "was trained without labels" if model.conditional else "is not conditional"
        raise UserError(f"--label given, but model {model.name!r} {why}; conditional models: cvae, cgan, ddpm on labelled data")
    classes = model.classes
    if label in classes:
        index = classes.index(label)
    else:
        try:
            index = int(label)
        except ValueError:
            from gencli.errors import did_you_mean

            raise UserError(f"unknown class {label!r}{did_you_mean(label, classes)}; classes: {', '.join(classes)}") from None
        if not 0 <= index < len(classes):
            raise UserError(f"label {index} is out of range: this model has {len(classes)} classes (0-{len(classes) - 1})")
    return torch.full((n,), index, dtype=torch.long, device=model.device)


def _model_options(model, allowed_attr: str, given: dict) -> dict:
    given = {k: v for k, v in given.items() if v is not None and v is not False}
    allowed = getattr(model, allowed_attr)
    for key in given:
        if key not in allowed:
            flag = "--" + key.replace("_", "-")
            can = ", ".join("--" + a.replace("_", "-") for a in sorted(allowed)) or "none"
            raise UserError(f"model {model.name!r} does not take {flag} (its options: {can})")
    return given


def _default_output(model, kind: str, suffix: str) -> Path:
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(getattr(model, "run_dir", Path(".")))
    return base / "generated" / f"{kind}-{stamp}{suffix}"


def _load(run: str, device: str):
    from gencli.training.engine import resolve_device
    from gencli.training.runs import load_trained

    return load_trained(run, device=str(resolve_device(device)))


@app.command()
@handle_errors
def sample(
    run: str = typer.Argument(..., help="Run directory, checkpoint, or model name (its latest run)."),
    n: int = typer.Option(64, "--n", "-n", help="How many images."),
    grid: bool = typer.Option(True, "--grid/--no-grid", help="One grid PNG, or one PNG per image."),
    label: Optional[str] = typer.Option(None, "--label", "-l", help="Class index or name (conditional models)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output PNG (grid) or folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    truncation: Optional[float] = typer.Option(None, "--truncation", help="Truncation psi (StyleGAN; 1 = off).", rich_help_panel=MODEL_PANEL),
    style_mix: bool = typer.Option(False, "--style-mix", help="Draw the style-mixing grid (StyleGAN).", rich_help_panel=MODEL_PANEL),
    noise: Optional[str] = typer.Option(None, "--noise", help="const or random noise inputs (StyleGAN).", rich_help_panel=MODEL_PANEL),
    steps: Optional[int] = typer.Option(None, "--steps", help="Sampling steps (diffusion).", rich_help_panel=MODEL_PANEL),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Classifier-free guidance w (diffusion).", rich_help_panel=MODEL_PANEL),
    eta: Optional[float] = typer.Option(None, "--eta", help="DDIM eta (diffusion; 0 = deterministic).", rich_help_panel=MODEL_PANEL),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="ddim or ddpm (diffusion).", rich_help_panel=MODEL_PANEL),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature (vqvae-prior).", rich_help_panel=MODEL_PANEL),
    forward_noise: bool = typer.Option(False, "--forward-noise", help="Show real images noised at several steps (diffusion).", rich_help_panel=MODEL_PANEL),
    timesteps: Optional[str] = typer.Option(None, "--timesteps", metavar="T,T,...", help="Columns of --forward-noise, e.g. 0,50,250,1000.", rich_help_panel=MODEL_PANEL),
) -> None:
    """Generate images from a trained model."""
    import torch

    from gencli.media.images import save_grid, save_images
    from gencli.models.base import require_capability

    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    model = _load(run, device)
    options = _model_options(model, "sample_options", dict(truncation=truncation, noise=noise, steps=steps,
                                                           guidance=guidance, eta=eta, sampler=sampler,
                                                           temperature=temperature))
    figure = "style-mix" if style_mix else "forward-noise" if forward_noise else None
    if timesteps is not None and not forward_noise:
        raise UserError("--timesteps chooses the columns of --forward-noise; add --forward-noise")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if figure is not None:
            if figure not in model.figures:
                raise UserError(f"model {model.name!r} cannot draw --{figure}")
            if figure == "forward-noise":
                options["data"] = _run_data(model, "test")
                if timesteps is not None:
                    options["timesteps"] = timesteps
            images, nrow = model.figure(figure, n, g, **options)
            path = out or _default_output(model, figure, ".png")
            print(save_grid(images, path, nrow))
            return
        require_capability(type(model), "sample")
        labels = _parse_label(model, label, n)
        images = model.sample(n, labels, g, **options)
    if grid:
        path = out or _default_output(model, "samples", ".png")
        print(save_grid(images, path, max(1, round(n**0.5))))
    else:
        folder = out or _default_output(model, "samples", "")
        paths = save_images(images, folder)
        print(folder if len(paths) > 1 else paths[0])


def _run_data(model, split: str, spec: str | None = None):
    from gencli.data.base import DataRequest
    from gencli.data.resolve import load_dataset

    d = model.run_info["data"]
    request = DataRequest(d["image_shape"][1], d["image_shape"][0], split, model.run_info["training"]["seed"])
    return load_dataset(spec or d["spec"], request)


# --------------------------------------------------------------------------- interpolate
@app.command()
@handle_errors
def interpolate(
    run: str = typer.Argument(..., help="Run directory, checkpoint, or model name."),
    steps: int = typer.Option(10, "--steps", help="Images along the path."),
    from_seed: int = typer.Option(0, "--from", help="Seed of the first latent."),
    to_seed: int = typer.Option(1, "--to", help="Seed of the last latent."),
    images: Optional[list[Path]] = typer.Option(None, "--images", help="Two images to interpolate between (encoder models); give twice."),
    latent_grid: Optional[int] = typer.Option(None, "--latent-grid", help="K: a KxK grid over a 2-D latent's range on the data."),
    label: Optional[str] = typer.Option(None, "--label", "-l", help="Class index or name (conditional models)."),
    space: Optional[str] = typer.Option(None, "--space", help="Latent space: w or z (StyleGAN).", rich_help_panel=MODEL_PANEL),
    truncation: Optional[float] = typer.Option(None, "--truncation", help="Truncation psi (StyleGAN; 1 = off).", rich_help_panel=MODEL_PANEL),
    sample_steps: Optional[int] = typer.Option(None, "--sample-steps", help="DDIM steps per image (diffusion).", rich_help_panel=MODEL_PANEL),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output PNG (a GIF is written beside it)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
) -> None:
    """Walk between two latents (or two images) and save a strip PNG and a GIF."""
    from gencli.commands.interpolate import interpolate_run

    if steps < 2:
        raise UserError(f"--steps must be at least 2, got {steps}")
    model = _load(run, device)
    options = _model_options(model, "interpolate_options", dict(space=space, steps=sample_steps, truncation=truncation))
    paths = interpolate_run(model, steps, from_seed, to_seed, images, latent_grid, label, options, out,
                            parse_label=_parse_label, run_data=_run_data, default_output=_default_output)
    for p in paths:
        print(p)


# --------------------------------------------------------------------------- eval
@app.command("eval")
@handle_errors
def eval_(
    runs: list[str] = typer.Argument(..., help="Run directory (or several with --compare)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated: fid, kid, prdc, fid-class, accuracy, mse, psnr, ssim, or a plugin's (default: what fits the model)."),
    n: int = typer.Option(10000, "--n", help="Generated images for FID-style metrics."),
    data: Optional[str] = typer.Option(None, "--data", help="Real data to compare with (default: the run's)."),
    split: str = typer.Option("test", "--split", help="Real-data split: train or test."),
    batch_size: int = typer.Option(100, "--batch-size", help="Batch size for generation and features."),
    fid_weights: Optional[str] = typer.Option(None, "--fid-weights", help="Local FID Inception weights (pt_inception-2015-12-05-6726825d.pth)."),
    features: Optional[str] = typer.Option(None, "--features", help="TorchScript feature extractor instead of Inception."),
    classifier: Optional[str] = typer.Option(None, "--classifier", help="TorchScript classifier for class accuracy."),
    label: Optional[str] = typer.Option(None, "--label", help="Evaluate one class (conditional models)."),
    compare: bool = typer.Option(False, "--compare", help="Print one table of the stored results of several runs."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    json_out: bool = typer.Option(False, "--json", help="Print results as JSON."),
    truncation: Optional[float] = typer.Option(None, "--truncation", help="Truncation psi (StyleGAN).", rich_help_panel=MODEL_PANEL),
    noise: Optional[str] = typer.Option(None, "--noise", help="const or random noise (StyleGAN).", rich_help_panel=MODEL_PANEL),
    steps: Optional[int] = typer.Option(None, "--steps", help="Sampling steps (diffusion).", rich_help_panel=MODEL_PANEL),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Guidance w (diffusion).", rich_help_panel=MODEL_PANEL),
    eta: Optional[float] = typer.Option(None, "--eta", help="DDIM eta (diffusion).", rich_help_panel=MODEL_PANEL),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="ddim or ddpm (diffusion).", rich_help_panel=MODEL_PANEL),
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
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    from gencli.training.engine import resolve_device
    from gencli.training.runs import resolve_run

    run_dir = resolve_run(runs[0]).run_dir
    result = ev.evaluate(run_dir, [m.strip() for m in metrics.split(",")] if metrics else None, n, data, split,
                         batch_size, str(resolve_device(device)), fid_weights, features, classifier, label, seed,
                         sample_options={k: v for k, v in dict(truncation=truncation, noise=noise, steps=steps,
                                                               guidance=guidance, eta=eta, sampler=sampler).items()
                                         if v is not None})
    if json_out:
        print(json.dumps(result, indent=2, default=str))
    else:
        ev.render_result(result)


# --------------------------------------------------------------------------- translate
@app.command()
@handle_errors
def translate(
    run: Optional[str] = typer.Argument(None, help="Run directory, checkpoint, or model name of a translation model."),
    inputs: Optional[list[Path]] = typer.Argument(None, help="Image files or folders."),
    direction: Optional[str] = typer.Option(None, "--direction", help="a2b or b2a (default: the model's own)."),
    to: Optional[str] = typer.Option(None, "--to", help="Target domain: a, b, or a domain name of the run's data."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: RUN/translated)."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Write input | output pairs."),
    resize_back: bool = typer.Option(False, "--resize-back", help="Resize outputs back to each input's size."),
    batch_size: int = typer.Option(16, "--batch-size", help="Images per batch."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
) -> None:
    """Translate images with a trained image-to-image model (cyclegan, pix2pix)."""
    from gencli.models.base import has_capability
    from gencli.plugins import registry

    if run is None:
        able = []
        for name, spec in registry().models.items():
            if ":" in name:
                continue
            try:
                if has_capability(spec.load(), "translate"):
                    able.append(name)
            except Exception:
                continue
        raise UserError("give a run and images: gencli translate RUN INPUT...; models that translate: "
                        + (", ".join(able) or "none installed"))
    model = _load(run, device)
    from gencli.models.base import require_capability

    require_capability(type(model), "translate")
    if not inputs:
        raise UserError("give at least one image file or folder to translate")
    if to is not None:
        direction = _direction_for(model, to)
    elif direction is None:
        direction = tuple(getattr(model, "directions", ("a2b",)))[0]
    if direction not in ("a2b", "b2a"):
        raise UserError(f"--direction must be a2b or b2a, got {direction!r}")
    from gencli.commands.translate import translate_paths

    c, s, _ = model.image_shape
    dest = out or Path(getattr(model, "run_dir", ".")) / "translated"
    written = translate_paths(model, list(inputs), direction, dest, side_by_side, resize_back, batch_size, s, c, model.device)
    print(f"{len(written)} image(s) written to {dest}")


def _direction_for(model, to: str) -> str:
    key = to.lower()
    if key in ("a", "b"):
        return "b2a" if key == "a" else "a2b"
    domains = [d.lower() for d in getattr(model, "domains", None) or _domains_from_spec(model)]
    if len(domains) == 2 and key in domains:
        return "a2b" if domains.index(key) == 1 else "b2a"
    raise UserError(f"unknown domain {to!r}; use a or b" + (f" or one of {', '.join(domains)}" if domains else ""))


def _domains_from_spec(model) -> list[str]:
    spec = (getattr(model, "run_info", {}) or {}).get("data", {}).get("spec", "")
    name = Path(spec).name
    if "2" in name:
        a, _, b = name.partition("2")
        return [a, b]
    return []


# --------------------------------------------------------------------------- listings
@app.command()
@handle_errors
def models(
    info: Optional[str] = typer.Option(None, "--info", help="Show a model's hyperparameters and capabilities."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the models the installed plugins provide."""
    from gencli.plugins import registry

    reg = registry()
    if info is not None:
        _model_info(reg.model(info), json_out)
        return
    rows = [{"name": k, "plugin": s.plugin, "data": s.data, "summary": s.summary}
            for k, s in sorted(reg.models.items()) if ":" not in k]
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    from gencli.ui.console import out

    table = Table(title="models", title_justify="left")
    for col in ("name", "plugin", "data", "summary"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["plugin"], r["data"], r["summary"])
    out.print(table)


def _model_info(spec, json_out: bool) -> None:
    from gencli.models import hparams
    from gencli.models.base import capabilities

    cls = spec.load()
    d = cls.defaults
    payload = {
        "name": spec.name, "plugin": spec.plugin, "summary": spec.summary, "data": cls.data,
        "conditional": cls.conditional, "capabilities": capabilities(cls),
        "defaults": {"image_size": d.image_size, "channels": d.channels, "batch_size": d.batch_size, "steps": d.steps},
        "hyperparameters": [dict(zip(("name", "type", "default", "help"), row)) for row in hparams.describe(cls.Hyperparameters)],
    }
    if json_out:
        print(json.dumps(payload, indent=2))
        return
    from rich.table import Table

    from gencli.ui.console import out

    out.print(f"[bold]{spec.name}[/] ({spec.plugin}): {spec.summary}")
    out.print(f"data: {cls.data}   capabilities: {', '.join(payload['capabilities']) or 'train only'}")
    out.print(f"defaults: {payload['defaults']}")
    table = Table(title="hyperparameters (--set key=value)", title_justify="left")
    for col in ("name", "type", "default", "help"):
        table.add_column(col, overflow="fold")
    for row in payload["hyperparameters"]:
        table.add_row(*(str(row[c]) for c in ("name", "type", "default", "help")))
    out.print(table)


@app.command()
@handle_errors
def datasets(
    info: Optional[str] = typer.Option(None, "--info", help="Show a dataset's card: source, licence, citation, classes."),
    prepare: Optional[str] = typer.Option(None, "--prepare", help="Download and verify a dataset without training."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="With --prepare: also build the prepared cache at this size (decodes and checks every image)."),
    channels: Optional[int] = typer.Option(None, "--channels", help="With --prepare --image-size: channels of the prepared cache (default 3)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List datasets, show their cards, or prepare one."""
    from gencli.data import cards

    cards.datasets_command(info, prepare, json_out, image_size, channels)


@app.command()
@handle_errors
def plugins(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List installed plugins, their versions and what each contributes; broken ones with their error."""
    from gencli.plugins import registry

    reg = registry()
    rows = [{"name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
             "status": "broken" if p.error else "ok", "error": p.error, "models": p.models,
             "datasets": p.datasets, "metrics": p.metrics, "shadowed": p.shadowed} for p in reg.plugins]
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    from gencli.ui.console import out

    table = Table(title="plugins", title_justify="left")
    for col in ("name", "distribution", "version", "status", "contributes"):
        table.add_column(col, overflow="fold")
    for r in rows:
        parts = [f"{k}: {', '.join(r[k])}" for k in ("models", "datasets", "metrics") if r[k]]
        if r["shadowed"]:
            parts.append("shadowed: " + "; ".join(r["shadowed"]))
        status = f"[red]broken[/]: {r['error']}" if r["error"] else "[green]ok[/]"
        table.add_row(r["name"], r["distribution"], r["version"], status, "\n".join(parts))
    out.print(table)


def _register_plugin_commands() -> None:
    from gencli.plugins import registry

    reg = registry()
    for plugin in reg.plugins:
        if plugin.error:
            continue
        module = reg.manager.get_plugin(plugin.name)
        hook = getattr(module, "gencli_register_commands", None)
        if hook is None:
            continue
        try:
            hook(app)
        except Exception as exc:
            plugin.error = f"gencli_register_commands raised {type(exc).__name__}: {exc}"


_register_plugin_commands()


def main() -> None:
    """Run the CLI; usage errors (unknown option, missing argument) also end in one line and exit 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="gencli", standalone_mode=False)
    except Exception as exc:
        format_message = getattr(exc, "format_message", None)
        if format_message is None or _state["debug"]:
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"error: {format_message()}{hint}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
