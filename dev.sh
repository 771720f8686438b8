#!/usr/bin/env bash
# One entry point for set-up and the main jobs.
#   ./dev.sh demo   create .venv, install pinned dependencies, run the few-shot demo on the CPU
#   ./dev.sh test   create .venv, install pinned dependencies, run the test suite
#   ./dev.sh setup  only create/refresh .venv
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

setup() {
  local stamp=.venv/.requirements.sha256
  local want
  want=$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "[dev.sh] setting up .venv with pinned dependencies ..." >&2
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
  # The project's own packages (dnnlib, torch_utils, training, metrics, fsgan), editable: scripts import them from anywhere.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
}

cmd=${1:-help}
shift || true
case "$cmd" in
  setup) setup ;;
  test)
    setup
    # pytest-xdist workers: most tests run on one thread, so two workers use both cores of a 2-core machine.
    # Default: one per core, at most 4 (one core: none). FSGAN_TEST_WORKERS overrides (0: one process, as
    # --pdb needs). nproc without OMP_* variables, which it would otherwise report instead of the cores.
    cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 2)
    workers=${FSGAN_TEST_WORKERS:-$(( cores < 2 ? 0 : (cores < 4 ? cores : 4) ))}
    exec .venv/bin/python -m pytest -q -n "$workers" "$@" ;;
  demo)
    setup
    exec .venv/bin/python scripts/demo.py "$@" ;;
  *)
    echo "usage: ./dev.sh {demo|test|setup} [args...]" >&2
    exit 2 ;;
esac
