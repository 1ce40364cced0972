#!/usr/bin/env bash
# Everything corral checks and times on a CUDA machine, in one command (a lent GPU is held by the
# minute, so the steps run back to back):
#   1. the CUDA copies of the kernel tests and the CUDA generation tests (pytest -m gpu);
#   2. the mask-kernel benchmark on CUDA (bench/kernels.py: Triton apply and fused log-softmax vs
#      xgrammar's kernels and the torch reference, CUDA events);
#   3. the decode-speed benchmark with a random Llama-3-8B-shaped bf16 model (bench/decode_speed.py).
# Results and one log go to $OUT (default bench/results/gpu). Wheels of packages the machine lacks can
# sit in .whl/ (they are installed into /tmp/site first).
#   4. (decode4) the same with the four prompts decoded as one batch;
#   (variants) the apply kernel's launch-parameter sweep (bench/kernel_variants.py).
#   usage: bash bench/gpu_session.sh [steps...]     steps: tests variants kernels decode decode4 (default: all)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu}
mkdir -p "$OUT"
LOG="$OUT/gpu_session.log"
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests variants kernels decode decode4)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  python3 -c "import sys, torch, triton, transformers, numba, numpy; print(sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__, 'numba', numba.__version__, 'numpy', numpy.__version__)"
  nproc
} 2>&1 | tee "$LOG"
status=0
for step in "${steps[@]}"; do
  echo "=== $step ($(date -u +%T))" | tee -a "$LOG"
  case "$step" in
    tests) python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_kernels.py tests/test_gpu_generate.py 2>&1 | tee -a "$LOG" || status=1 ;;
    variants) python3 -m bench.kernel_variants 2>&1 | tee -a "$LOG" || status=1 ;;
    kernels) python3 -m bench.kernels --device cuda --out-dir "$OUT" 2>&1 | tee -a "$LOG" || status=1 ;;
    decode) python3 bench/decode_speed.py --device cuda --random-llama8b --png "$OUT/decode_speed_cuda.png" 2>&1 | tee -a "$LOG" || status=1 ;;
    decode4) python3 bench/decode_speed.py --device cuda --random-llama8b --batch 4 --no-hf --png "$OUT/decode_speed_cuda_b4.png" 2>&1 | tee -a "$LOG" || status=1 ;;
    *) echo "unknown step $step" | tee -a "$LOG"; status=2 ;;
  esac
done
echo "=== done ($(date -u +%T)) status $status" | tee -a "$LOG"
exit $status
