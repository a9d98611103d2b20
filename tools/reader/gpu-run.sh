#!/usr/bin/env bash
# The whole reader training on a lent GPU, in one `device` call (see tools/reader/gpu.py):
#   here:   python -m tools.reader.gpu pack            (makes .gpu/, ~40 MiB)
#   device: run(command="bash tools/reader/gpu-run.sh --data-v2 --init qa/read/neural/model --epochs 2 --batch 64 --lr 1e-4",
#               carry=[".gpu"], timeout_s=600)
#   here:   python -m tools.reader.gpu unpack FILES_AT --out DIR, then python -m tools.reader.suite --model DIR …
# Arguments go to `python -m tools.reader.train`. QA_GPU_DRY=1 runs five steps (to try it on a CPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
PACK=${QA_GPU_PACK:-.gpu}
OUT=${OUT:-/tmp/gpu-out}
WORK=${QA_GPU_WORK:-/tmp/qa-gpu}
PY=${PYTHON:-python3}
[ -f "$PACK/e5-pruned.bin" ] || { echo "gpu-run: no $PACK/e5-pruned.bin (run python -m tools.reader.gpu pack here first)" >&2; exit 2; }
mkdir -p "$OUT" "$WORK"
# the data where every tool looks for it: ../shared/data beside the repository
DATA="$(cd .. && pwd)/shared/data"
if [ ! -f "$DATA/cmrc2018_train.json" ]; then
  mkdir -p "$DATA"
  for f in "$PACK"/data/*.json.gz; do gunzip -c "$f" > "$DATA/$(basename "$f" .gz)"; done
fi
if compgen -G "$PACK/wheels/*.whl" >/dev/null; then
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" "$PACK"/wheels/*.whl; then
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "gpu-run: the pack's wheels do not fit this Python; --traditional needs OpenCC" >&2
  fi
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
"$PY" -m tools.reader.gpu base --pack "$PACK" --out "$WORK/base"
dry=()
[ -n "${QA_GPU_DRY:-}" ] && dry=(--max-steps 5 --val-size 20)
t0=$(date +%s)
"$PY" -m tools.reader.train --base "$WORK/base" --out "$WORK/run" --device auto --threads "$(nproc)" "$@" "${dry[@]}"
echo "gpu-run: trained in $(( $(date +%s) - t0 )) s"
cp "$WORK/run/train.log" "$OUT/train.log"
"$PY" -m tools.reader.export --src "$WORK/run/final" --base "$WORK/base" --out "$WORK/model"
"$PY" -m tools.reader.calibrate --model "$WORK/model" --write
mkdir -p "$OUT/model"
cp "$WORK/model"/* "$OUT/model/"
"$PY" -m tools.reader.gpu split "$OUT/model/model.onnx"
ls -la "$OUT/model"
