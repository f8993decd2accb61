#!/usr/bin/env bash
# Install what the demo, the tests and the benchmarks need on a fresh Debian machine:
# logrotate, patch and wrk from Debian's packages, and a tools venv (pytest, uv, ruff, build,
# twine) at $TOOLS_VENV. Idempotent and quiet when everything is there. Prints the venv's python.
set -euo pipefail
TOOLS_VENV=${TOOLS_VENV:-$HOME/.cache/uvicorn-usr1-patch/tools-venv}
PY=${PYTHON:-python3}

missing=()
for tool in logrotate patch wrk gzip; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "bootstrap: installing ${missing[*]} from Debian's packages" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

if [ ! -x "$TOOLS_VENV/bin/python" ] || ! "$TOOLS_VENV/bin/python" -c "import pytest, build, twine, prometheus_client" 2>/dev/null \
    || [ ! -x "$TOOLS_VENV/bin/uv" ] || [ ! -x "$TOOLS_VENV/bin/ruff" ]; then
    echo "bootstrap: creating the tools venv $TOOLS_VENV" >&2
    rm -rf "$TOOLS_VENV"
    "$PY" -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "pytest>=7" "uv>=0.4" "ruff>=0.6" "build>=1" "twine>=5" "setuptools>=64" wheel "prometheus_client>=0.8" >&2
fi
echo "$TOOLS_VENV/bin/python"
