#!/usr/bin/env bash
# Set up everything on a fresh machine: a virtual environment in .venv with the
# project and its dependencies (no torch). `bash setup.sh --test` adds the test tools and
# the headless browser used by the page's end-to-end test; `--train` adds torch + transformers.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
extras="ui"
train=""
for arg in "$@"; do
  case "$arg" in
    # the milvus extra too, so the Milvus store's tests run against a real milvus-lite server
    # (pure-Python wheels; the ray extra — 240 MB and worker processes — only with QA_TEST_RAY=1)
    --test) extras="${extras},test,milvus"; [ -n "${QA_TEST_RAY:-}" ] && extras="${extras},ray" ;;
    --train) train=1 ;;
    *) echo "setup: unknown option $arg (use --test and/or --train)" >&2; exit 2 ;;
  esac
done
[ -n "${QA_WITH_TORCH:-}" ] && train=1
# Answering and indexing need no torch: the reader and the index encoder run on onnxruntime.
# `--train` (or QA_WITH_TORCH=1) adds the CPU build of PyTorch and transformers, for training
# and exporting the reader and the torch encoder. torch is installed first and pinned, so
# nothing later pulls a CUDA build; elsewhere point pip at the CPU wheels
# (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu).
if [ -n "$train" ]; then
  if pip install -q "torch==${QA_TORCH_VERSION:-2.13.0}"; then
    extras="${extras},transformers"
  else
    echo "setup: no CPU build of torch could be installed; training tools unavailable" >&2
  fi
fi
pip install -q -e ".[${extras}]"
if [[ ",$extras," == *",test,"* ]]; then
  # axe-core for the page's accessibility test (npm registry; skipped with a reason without it)
  command -v npm >/dev/null 2>&1 && npm install --prefix .venv --no-audit --no-fund --silent axe-core@4 \
    || echo "setup: npm missing or offline; the axe-core accessibility test will be skipped" >&2
  if ! command -v chromium >/dev/null 2>&1 || ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    if [ "$(id -u)" = 0 ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
        || echo "setup: could not install chromium; the browser test will be skipped" >&2
    else
      echo "setup: chromium or CJK fonts missing (sudo apt-get install chromium fonts-noto-cjk); the browser test will be skipped" >&2
    fi
  fi
fi
echo "setup: ready (.venv)"
