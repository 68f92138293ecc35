#!/usr/bin/env bash
# `scripts/torch-cpu.sh PYTHON`: install PyTorch's CPU-only build into PYTHON's environment before
# the rest of the dependencies, where it makes a difference and can be had quickly.
# On Linux, PyPI's torch is the CUDA build (several GB); PyTorch's CPU index has the same release
# without CUDA (about 200 MB). Nothing happens when:
#   - TORCH_CPU=0 (you own an NVIDIA GPU and want the CUDA build),
#   - this is not Linux (macOS and Windows wheels on PyPI are CPU builds already),
#   - the pinned torch is installed already,
#   - the CPU index (TORCH_CPU_INDEX) does not answer within 3 s: set-up then goes on with
#     whatever pip finds (on the workbook's own machines, a CPU wheel on disk).
set -euo pipefail
python="$1"
index="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
root="$(cd "$(dirname "$0")/.." && pwd)"

[ "${TORCH_CPU:-1}" = 0 ] && exit 0
[ "$(uname -s)" = Linux ] || exit 0
pin="$("$python" "$root/compose/requirements.py" "$root/pyproject.toml" train | grep '^torch==')"
installed="$("$python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
[ "${installed%%+*}" = "${pin#torch==}" ] && exit 0
if ! curl --silent --fail --max-time 3 --output /dev/null "$index/torch/"; then
  echo "note: $index does not answer: torch comes from pip's usual sources (TORCH_CPU=0 skips this check)" >&2
  exit 0
fi
echo "installing $pin, CPU-only, from $index"
"$python" -m pip install --quiet --no-deps --index-url "$index" "$pin"
