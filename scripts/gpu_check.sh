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
#   mlp.txt           the 10-300-300-1 MLP (93,901 parameters, 256 rows): float32 with the
#                     frameworks' default settings, float32 with TF32 off, float64
#   mlp-default.json  the float32 default-settings run as JSON (the TF32 note, the fingerprint)
#   mlp-highest.json  the same with --matmul-precision highest
#   bench.txt         gradcmp bench --device cuda: times against the device's roofline
# Every gradcmp exit code is kept in the text files; the script itself always finishes.
set -u
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 COLUMNS=100
PY=python3

if [ -d .device-wheels ]; then
    $PY -m pip install --quiet --no-index --find-links .device-wheels gmpy2 array-api-compat \
        2>&1 | tail -3
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
    { echo "## $title"; echo "\$ gradcmp ${*:4}"; } >>"$OUT/$file"
    timeout 300 "$@" >>"$OUT/$file" 2>&1
    echo "exit code $?" >>"$OUT/$file"
    echo >>"$OUT/$file"
}
G=($PY -m gradcmp run)

step seed.txt "the seed, every torch and JAX backend on the GPU" \
    "${G[@]}" --device cuda -b all --dtype float32,float64

$PY - <<'EOF'
import numpy as np
rng = np.random.default_rng(0)
X = rng.normal(size=(256, 10))
y = np.tanh(X @ rng.normal(size=10)) + 0.1 * rng.normal(size=256)
np.savetxt("/tmp/mlp.csv", np.column_stack([X, y]), delimiter=",", fmt="%.17g",
           header=",".join([f"x{j}" for j in range(10)] + ["y"]), comments="")
EOF
MLP=(--data /tmp/mlp.csv --model mlp --hidden 300,300 --device cuda -b torch-grad,jax-grad,jax-jit)
step mlp.txt "MLP 10-300-300-1, float32, each framework's default settings" \
    "${G[@]}" "${MLP[@]}" --dtype float32
step mlp.txt "MLP 10-300-300-1, float32, TF32 off (--matmul-precision highest)" \
    "${G[@]}" "${MLP[@]}" --dtype float32 --matmul-precision highest
step mlp.txt "MLP 10-300-300-1, float64" "${G[@]}" "${MLP[@]}" --dtype float64
"${G[@]}" "${MLP[@]}" --dtype float32 --format json -o "$OUT/mlp-default.json" >/dev/null 2>&1
"${G[@]}" "${MLP[@]}" --dtype float32 --matmul-precision highest --format json \
    -o "$OUT/mlp-highest.json" >/dev/null 2>&1
cat "$OUT/mlp.txt"

step bench.txt "bench on the GPU against its roofline" \
    $PY -m gradcmp bench --device cuda --repeat 5
cat "$OUT/bench.txt"
