#!/usr/bin/env bash
# The GPU check of issue 14, as one prepared run on a machine with an NVIDIA GPU (the device
# tool's H200: torch and JAX with CUDA in its image, nothing downloadable there).
#
# Here, once (gmpy2 and array-api-compat are not in that image; wheels for its Python 3.12):
#   make device-wheels
# Then, with the device tool (carry the wheels; about 5 minutes):
#   run(command="bash scripts/gpu_check.sh", carry=[".device-wheels"], timeout_s=540)
#
# What it runs, each output into $OUT (or ./gpu-check without $OUT):
#   versions.txt      python, torch, jax, the GPU, CUDA, cuDNN, TF32 defaults
#   seed.txt          gradcmp run on the bundled data, every torch/JAX backend on cuda
#   mlp.txt           the 10-300-300-1 MLP (93,901 parameters, 256 rows) in float32 with the
#                     frameworks' default settings, with TF32 allowed in both, with TF32 off,
#                     and in float64; a 10-64-1 MLP (769 parameters), whose bound is tight
#                     enough for TF32 to disagree, in float32 the same three ways
#   mlp-default.json, mlp-tf32.json   the JSON reports of the first two (the TF32 notes,
#                     each result's settings, the GPU fingerprint)
#   bench.txt         gradcmp bench --device cuda: times against the device's roofline
# Every gradcmp exit code is kept in the text files; each step has its own time limit, and
# the script ends well inside the 540 s asked for.
# DEVICE=cpu runs the same steps on the CPU (a rehearsal of the script where there is no GPU).
set -u
OUT="${OUT:-gpu-check}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT"
SITE=/tmp/gradcmp-site  # the carried wheels, installed beside the image's packages
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 COLUMNS=100
# torch and JAX share the GPU (a worker process each): JAX takes memory as it needs it,
# not 75 % of the device at start.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=python3

if [ -d .device-wheels ]; then
    $PY -m pip install --quiet --no-index --no-deps --target "$SITE" \
        --find-links .device-wheels gmpy2 array-api-compat 2>&1 | tail -3
fi
# Everything gradcmp imports, before any time is spent: stop here if one is missing.
if ! $PY -c "import click, rich, numpy, gmpy2, array_api_compat, ml_dtypes, torch, jax"; then
    echo "a package gradcmp needs is missing: see above" | tee "$OUT/versions.txt"
    exit 1
fi

$PY - >"$OUT/versions.txt" 2>&1 <<'EOF'
import platform, torch, jax
print("python", platform.python_version())
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("torch sees", torch.cuda.is_available() and torch.cuda.get_device_name(0))
print("torch allow_tf32 matmul", torch.backends.cuda.matmul.allow_tf32,
      "cudnn", torch.backends.cudnn.allow_tf32,
      "float32_matmul_precision", torch.get_float32_matmul_precision())
print("jax", jax.__version__, jax.devices())
print("jax_default_matmul_precision", jax.config.jax_default_matmul_precision)
EOF
cat "$OUT/versions.txt"

step() {  # step FILE TITLE COMMAND...: the command's output and exit code into FILE
    local file="$1" title="$2"
    shift 2
    { echo "## $title"; echo "\$ ${*}"; } >>"$OUT/$file"
    timeout 120 "$@" >>"$OUT/$file" 2>&1
    echo "exit code $?" >>"$OUT/$file"
    echo >>"$OUT/$file"
}
G=($PY -m gradcmp run)

step seed.txt "the seed, every torch and JAX backend on the GPU" \
    "${G[@]}" --device "$DEVICE" -b all --dtype float32,float64

$PY - <<'EOF'
import numpy as np
rng = np.random.default_rng(0)
X = rng.normal(size=(256, 10))
y = np.tanh(X @ rng.normal(size=10)) + 0.1 * rng.normal(size=256)
np.savetxt("/tmp/mlp.csv", np.column_stack([X, y]), delimiter=",", fmt="%.17g",
           header=",".join([f"x{j}" for j in range(10)] + ["y"]), comments="")
EOF
MLP=(--data /tmp/mlp.csv --model mlp --hidden 300,300 --device "$DEVICE" -b torch-grad,jax-grad,jax-jit)
SMALL=(--data /tmp/mlp.csv --model mlp --hidden 64 --device "$DEVICE" -b torch-grad,jax-grad,jax-jit)
step mlp.txt "MLP 10-300-300-1, float32, each framework's default settings" \
    "${G[@]}" "${MLP[@]}" --dtype float32 --report-dir /tmp/mlp-default \
    --json-detail summary
step mlp.txt "MLP 10-300-300-1, float32, TF32 allowed in both (--matmul-precision tf32)" \
    "${G[@]}" "${MLP[@]}" --dtype float32 --matmul-precision tf32 \
    --report-dir /tmp/mlp-tf32 --json-detail summary
step mlp.txt "MLP 10-300-300-1, float32, TF32 off (--matmul-precision highest)" \
    "${G[@]}" "${MLP[@]}" --dtype float32 --matmul-precision highest
step mlp.txt "MLP 10-300-300-1, float64" "${G[@]}" "${MLP[@]}" --dtype float64
step mlp.txt "MLP 10-64-1, float32, each framework's default settings" \
    "${G[@]}" "${SMALL[@]}" --dtype float32
step mlp.txt "MLP 10-64-1, float32, TF32 allowed in both" \
    "${G[@]}" "${SMALL[@]}" --dtype float32 --matmul-precision tf32
step mlp.txt "MLP 10-64-1, float32, TF32 off" \
    "${G[@]}" "${SMALL[@]}" --dtype float32 --matmul-precision highest
cat "$OUT/mlp.txt"
# (the device tool returns at most 8 files: the JSON of each report directory)
cp /tmp/mlp-default/gradcmp.json "$OUT/mlp-default.json" 2>/dev/null
cp /tmp/mlp-tf32/gradcmp.json "$OUT/mlp-tf32.json" 2>/dev/null

step bench.txt "bench on the GPU against its roofline" \
    env COLUMNS=150 $PY -m gradcmp bench --device "$DEVICE" -b torch-grad,jax-grad,jax-jit --rows 1e5,1e6,1e7 \
    --dtype float32 --repeat 5
cat "$OUT/bench.txt"
