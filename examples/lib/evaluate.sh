# Sourced by the example scripts that compare runs by FID: `evaluate RUN [gencli eval options]`.
# FID needs pytorch-fid's Inception weights (downloaded on first use) or a feature network of your
# own: FEATURES=net.pt passes a TorchScript network, FID_WEIGHTS=FILE the weights from a local file.
# Without either on an offline machine the evaluations are skipped with a note; training still runs.
eval_args=()
if [[ -n "${FEATURES:-}" ]]; then eval_args+=(--features "$FEATURES"); fi
if [[ -n "${FID_WEIGHTS:-}" ]]; then eval_args+=(--fid-weights "$FID_WEIGHTS"); fi
evaluate() {
  if ! gencli eval "$@" ${eval_args[@]+"${eval_args[@]}"}; then
    echo "note: $1 not evaluated (the line above says why); set FEATURES=net.pt or FID_WEIGHTS=FILE, then: gencli eval $1" >&2
  fi
}
