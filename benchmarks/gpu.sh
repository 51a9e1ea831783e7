#!/usr/bin/env bash
# Every GPU measurement the project needs, on one GPU, in under 8 minutes, written as one section
# ("GPU measurements") of benchmarks/RESULTS.md. Run from anywhere, with gencli's environment active:
#
#   bash benchmarks/gpu.sh                           # one CUDA GPU: writes benchmarks/RESULTS.md
#   bash benchmarks/gpu.sh --device cpu --quick      # checks this script end to end on the CPU (a few minutes);
#                                                    # writes its section to a temporary file unless --write
#   options: --device cuda|cpu, --quick, --write FILE, --keep (keep the work folder)
#   environment: PYTHON (default: python), REFERENCE_COMPILE=1 (also torch.compile in bench_reference.py)
#
# Stages, each an existing benchmark script with its own options (their sections are kept whole,
# one heading level down), each under a time budget and a hard timeout:
#   1. train step per family at its defaults, fp32 / bf16 / fp16     (bench_train.py --defaults)
#   2. the same with torch.compile (bf16), as many families as fit  (bench_train.py --modes bf16+compile)
#   3. gencli's step against the reference training loops           (bench_reference.py; bf16 channels_last side)
#   4. DDIM 50 against DDPM 1000 sampling, time and quality          (bench_diffusion_sampling.py)
#   5. gencli eval against the PNG + pytorch-fid route               (bench_eval.py)
#   6. gencli train directly and through torchrun with one process, and with --sync-bn (NCCL, CUDA only)
# A stage that fails is reported in the section and the script exits 1 after the others have run.

set -uo pipefail

DEVICE=cuda
QUICK=0
WRITE=""
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="${2:?--device needs a value}"; shift 2 ;;
    --device=*) DEVICE="${1#--device=}"; shift ;;
    --quick) QUICK=1; shift ;;
    --write) WRITE="${2:?--write needs a file}"; shift 2 ;;
    --write=*) WRITE="${1#--write=}"; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in
  cuda|cuda:*|cpu) ;;
  *) echo "error: --device must be cuda or cpu, got $DEVICE" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 2
PY="${PYTHON:-python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gencli-gpu-bench.XXXXXX")"
PARTS="$WORK/parts"
mkdir -p "$PARTS"
if [ -z "$WRITE" ]; then
  if [ "$DEVICE" = cpu ] || [ "$QUICK" = 1 ]; then WRITE="$WORK/section.md"; else WRITE="$ROOT/benchmarks/RESULTS.md"; fi
fi
cleanup() { if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

if [ "$DEVICE" != cpu ]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "error: --device $DEVICE but torch sees no CUDA device (use --device cpu --quick to check the script)" >&2; exit 2; }
fi

# Sizes of each stage: the full run on a GPU, the check on the CPU.
if [ "$QUICK" = 1 ]; then
  TRAIN_ARGS=(--models vae,dcgan --steps 1 --warmup 1)
  # bf16 compiles slowly on most CPUs: the check compiles the vae in fp32 (still minutes on a busy 2-core machine)
  TRAIN_BUDGET=60; COMPILE_MODELS=(--models vae); COMPILE_BUDGET=60; COMPILE_MODE=fp32+compile; COMPILE_LIMIT=300
  REF_ARGS=(--configs dcgan-64 --rounds 1 --steps 1 --warmup 1)
  DIFF_ARGS=(--train-steps 10 --n 12 --ddim-steps 10,50)
  EVAL_ARGS=(--n 10 --size 16 --batch-size 10 --train-steps 2 --repeats 1)
  DDP_STEPS=3
else
  TRAIN_ARGS=(--steps 10 --warmup 3)
  TRAIN_BUDGET=60; COMPILE_MODELS=(); COMPILE_BUDGET=75; COMPILE_MODE=bf16+compile; COMPILE_LIMIT=240
  REF_ARGS=(--rounds 3 --steps 5 --warmup 2)
  DIFF_ARGS=(--train-steps 800 --n 120)
  EVAL_ARGS=(--n 1000 --repeats 1)
  DDP_STEPS=100
fi
[ "${REFERENCE_COMPILE:-0}" = 1 ] && REF_ARGS+=(--compile)

STAGES=()   # "name|seconds|status|command" lines for the section
FAILED=0
START_ALL=$SECONDS

# run_stage NAME TIMEOUT_S COMMAND...: run, time and record one stage (its output goes to the terminal and a log).
run_stage() {
  local name="$1" limit="$2"; shift 2
  local start=$SECONDS status
  echo "=== $name (limit ${limit} s): $*" >&2
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$WORK/$name.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" = 0 ]; then status=ok; elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status="timed out"; FAILED=1
  else status="failed (exit $rc)"; FAILED=1; fi
  STAGES+=("$name|$((SECONDS - start))|$status|$*")
  echo "=== $name: $status in $((SECONDS - start)) s (total $((SECONDS - START_ALL)) s)" >&2
}

B=benchmarks
run_stage train-precisions $((TRAIN_BUDGET * 3)) \
  "$PY" $B/bench_train.py --device "$DEVICE" --defaults --in-process --modes fp32,bf16,fp16 \
  --budget-s "$TRAIN_BUDGET" "${TRAIN_ARGS[@]}" --write "$PARTS/1-train.md"
run_stage train-compile "$COMPILE_LIMIT" \
  "$PY" $B/bench_train.py --device "$DEVICE" --defaults --in-process --modes "$COMPILE_MODE" \
  --budget-s "$COMPILE_BUDGET" "${TRAIN_ARGS[@]}" "${COMPILE_MODELS[@]}" --write "$PARTS/2-compile.md"
run_stage reference 300 \
  "$PY" $B/bench_reference.py --device "$DEVICE" "${REF_ARGS[@]}" --write "$PARTS/3-reference.md"
run_stage diffusion-sampling 300 \
  "$PY" $B/bench_diffusion_sampling.py --device "$DEVICE" "${DIFF_ARGS[@]}" --write "$PARTS/4-diffusion.md"
run_stage eval 300 \
  "$PY" $B/bench_eval.py --device "$DEVICE" "${EVAL_ARGS[@]}" --write "$PARTS/5-eval.md"

# gencli train: directly, then through torchrun with one process (as `--devices N` launches it), then with --sync-bn.
export GENCLI_RUNS_DIR="$WORK/runs"
TRAIN=(train dcgan --steps "$DDP_STEPS" --device "$DEVICE" --sample-every "$DDP_STEPS" --checkpoint-every "$DDP_STEPS")
LAUNCH=("$PY" -m gencli.training.launch --standalone --nproc_per_node=1 -m gencli --quiet)
run_stage train-direct 180 "$PY" -m gencli --quiet "${TRAIN[@]}" --out "$WORK/direct"
run_stage train-torchrun 180 "${LAUNCH[@]}" "${TRAIN[@]}" --out "$WORK/torchrun"
if [ "$DEVICE" != cpu ]; then
  run_stage train-torchrun-sync-bn 180 "${LAUNCH[@]}" "${TRAIN[@]}" --sync-bn --out "$WORK/sync-bn"
else
  STAGES+=("train-torchrun-sync-bn|0|skipped: --sync-bn needs CUDA|")
fi
for run in direct torchrun sync-bn; do
  if [ -d "$WORK/$run" ] && ! "$PY" -c "import json, sys; sys.exit(json.load(open(sys.argv[1]))['status'] != 'finished')" \
      "$WORK/$run/run.json" 2>/dev/null; then
    echo "error: the $run training run did not finish (see its log above)" >&2; FAILED=1
  fi
done

# The section: machine, the stages with their times, then every part one heading level down.
printf '%s\n' "${STAGES[@]}" > "$WORK/stages.txt"
"$PY" - "$DEVICE" "$QUICK" "$WRITE" "$PARTS" "$WORK/stages.txt" "$((SECONDS - START_ALL))" <<'EOF'
import re
import sys
from pathlib import Path

sys.path.insert(0, "benchmarks")
from results import machine, machine_line, write_section  # noqa: E402

device, quick, write, parts, stages, total = sys.argv[1], sys.argv[2] == "1", Path(sys.argv[3]), Path(sys.argv[4]), \
    Path(sys.argv[5]), int(sys.argv[6])
command = "bash benchmarks/gpu.sh" + ("" if device == "cuda" else f" --device {device}") + (" --quick" if quick else "")
lines = ["## GPU measurements", "", f"`{command}`", "", machine_line(machine(device)), ""]
if device == "cpu" or quick:
    lines += ["**Check run** of the script (" + ("on the CPU, " if device == "cpu" else "") + "`--quick`: tiny "
              "sizes and steps): it shows every stage runs end to end; the figures are not the GPU's.", ""]
lines += [f"Every stage below ran in this one run, in {total} s; each is an existing benchmark script (its "
          "command under its own heading, the scratch file it wrote left out) under a time budget.", "",
          "| stage | seconds | status |", "|---|---:|---|"]
for row in filter(None, stages.read_text().splitlines()):
    name, seconds, status, _ = row.split("|", 3)
    lines.append(f"| {name} | {seconds} | {status} |")
lines.append("")
for part in sorted(parts.glob("*.md")):
    text = part.read_text().strip("\n")
    if text.startswith("# Benchmark results"):
        text = text.split("\n", 1)[1].strip("\n")
    text = re.sub(r" --write \S+", "", text)  # the scratch file each part was written to
    lines += ["#" + line if line.startswith("## ") else line for line in text.splitlines()]
    lines.append("")
write_section(write, "\n".join(lines))
print(f"wrote the GPU measurements section into {write}")
EOF
[ $? = 0 ] || FAILED=1
if [ "$KEEP" = 1 ] || [ "$WRITE" = "$WORK/section.md" ]; then
  trap - EXIT
  echo "work folder kept: $WORK (section: $WRITE)" >&2
fi
echo "gpu.sh: $([ $FAILED = 0 ] && echo all stages passed || echo some stages FAILED) in $((SECONDS - START_ALL)) s" >&2
exit $FAILED
