#!/usr/bin/env bash
# The GPU checks of issue #11 in one call, for a session lent a GPU machine (no network,
# a short budget): `lazykernels check`, the benchmark's dry run (every kernel it will launch
# compiled by NVRTC for sm_90, the 2D scheme's two passes included), the cuda test tier
# (tests/test_cuda_gpu.py: the 1D and 2D schemes, kNN at D=50, the op cards' helper
# functions -- Rsqrt, SinXDivX, XLogX, Pow, Round, Sign, Step, Mod, the clamps -- and their
# gradients at their singular points; plus the emulation-backed runner tests), then
# benchmarks/bench_gpu.py. Results go under $OUT
# (default: a new temporary folder), one file per step, and a summary is printed.
#
#   bash scripts/gpu_check.sh            # from the repository root, PYTHONPATH=src
#
# Optional: pure-Python KeOps (pykeops + keopscore) copied into .gpu_deps/ (and carried to
# the machine) is put on the path for the KeOps GPU rows; it compiles with the machine's
# nvcc, and the benchmark records why when it cannot.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu_deps ] && export PYTHONPATH="$PYTHONPATH:$PWD/.gpu_deps"
export LAZYKERNELS_CACHE="$OUT/lk-cache"

step() {  # name, time limit (s), command...
  local name="$1" limit="$2"; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  echo "== $name: rc=$rc in $((SECONDS - start)) s (full log: $OUT/$name.txt)"
  tail -n "${TAIL:-25}" "$OUT/$name.txt"
}

step environment 60 bash -c "nvidia-smi; $PY -c 'import sys, numpy, torch; print(sys.version); \
print(\"numpy\", numpy.__version__, \"torch\", torch.__version__, torch.version.cuda, \
torch.cuda.is_available())'; $PY -c 'import platformdirs, filelock, pytest' || echo 'MISSING: \
lazykernels needs platformdirs and filelock, the tier pytest'; $PY -m pip list 2>/dev/null | grep -i -E 'cuda|nvidia|torch|pytest|keops|faiss'"
step check 120 "$PY" -m lazykernels check
step bench_dry 60 "$PY" benchmarks/bench_gpu.py --dry --json "$OUT/bench_dry.json"
step cuda_tier 300 "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_cuda_gpu.py \
  tests/test_cuda_runner.py
# every row, the kNN D=50 one (a looped dimension) and the M=1e3 x N=1e6 GPU_2D / GPU_1D pair
step bench_gpu 420 "$PY" benchmarks/bench_gpu.py --repeats 3 --json "$OUT/bench_gpu.json"
echo "results under $OUT"
