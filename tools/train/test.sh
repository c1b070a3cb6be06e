#!/usr/bin/env bash
# The trainer's tests (pytest, CPU). Installs Debian's PyTorch, OpenBLAS, pytest and numpy when
# they are missing (CI runs this as root), then runs the suite with the system Python.
set -euo pipefail
cd "$(dirname "$0")"
if ! /usr/bin/python3 -c "import torch, pytest, numpy" >/dev/null 2>&1; then
  echo "== installing the trainer's Debian packages"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch libopenblas0-pthread python3-pytest python3-numpy
fi
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests "$@"
