#!/usr/bin/env bash
# The GPU path on a real GPU, in one prepared run (issue 8): fits in 8 minutes on one H100/H200.
#
#   bash bench/gpu_check.sh             # on the lent GPU machine, from the repository root
#   bash bench/gpu_check.sh --dry-run   # here, on the CPU: the same steps, tiny and fp32 only
# Environment: OUT (where the files go), PYTHON (default python3; .venv's in a dry run),
# THREADS (CPU threads of the benchmark; 0 = one per core).
#
# 1. the tests marked `cuda` (tests/test_cuda.py: AMP bf16 and fp16 with GradScaler,
#    channels_last, cudnn.benchmark, the FID path on the GPU, a few iterations of the real
#    train stage);
# 2. the train-step benchmark at 32 px (resnet_6blocks) and 256 px (resnet_9blocks), batch 1,
#    in fp32, tf32 and bf16, with MFU against the GPU's matmul peak measured in the same mode;
# 3. a table, bench_gpu.md, and the raw JSON lines, in $OUT (a temporary folder if unset).
#
# It installs nothing: the GPU machine's image has torch, numpy, PyYAML, Pillow, scikit-image,
# pytest; the code runs from src/ through PYTHONPATH. DVC and MLflow are not needed: without
# MLflow the train stage's tracking is a no-op stand-in in the test. The 87 MB FID weights cannot
# travel (the device's working tree is capped at 64 MiB): without them the FID test runs the same
# path with a TorchScript stand-in network and says so in its log.
set -uo pipefail

DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1
cd "$(dirname "$0")/.."
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
if [[ -n "${PYTHON:-}" ]]; then :
elif [[ $DRY_RUN == 1 && -x .venv/bin/python ]]; then PYTHON=.venv/bin/python
else PYTHON=python3
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"

if [[ $DRY_RUN == 1 ]]; then
    DEVICE=cpu; PRECISIONS="fp32"; CONFIGS="tiny_32"; REPEATS=1
else
    DEVICE=cuda; PRECISIONS="fp32 tf32 bf16"; CONFIGS="r6_32 r9_256"; REPEATS=20
fi
status=0
log() { echo "gpu_check: $*" | tee -a "$OUT/gpu_check.log"; }

log "dry_run=$DRY_RUN device=$DEVICE precisions=$PRECISIONS configs=$CONFIGS out=$OUT"
{
    date -u
    "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'available', torch.cuda.is_available(),
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
        --format=csv
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

log "1/2 tests marked cuda"
timeout 300 "$PYTHON" -m pytest -m cuda tests/test_cuda.py -q -rs -p no:cacheprovider \
    2>&1 | tee "$OUT/cuda_tests.log"
rc=${PIPESTATUS[0]}
log "tests exit $rc"
[[ $rc != 0 ]] && status=1

log "2/2 train-step benchmark"
rm -f "$OUT/gpu_bench.jsonl"
for precision in $PRECISIONS; do
    # shellcheck disable=SC2086
    timeout 240 "$PYTHON" bench/bench_train_step.py --device "$DEVICE" --precision "$precision" \
        --configs $CONFIGS --repeats "$REPEATS" --threads "${THREADS:-0}" \
        --jsonl "$OUT/gpu_bench.jsonl" \
        2>&1 | tee -a "$OUT/gpu_check.log"
    rc=${PIPESTATUS[0]}
    [[ $rc != 0 ]] && { log "benchmark $precision exit $rc"; status=1; }
done

"$PYTHON" bench/run.py --table-from "$OUT/gpu_bench.jsonl" >"$OUT/bench_gpu.md" \
    || { log "table failed"; status=1; }
cat "$OUT/bench_gpu.md"
log "done, exit $status; files in $OUT"
exit $status
