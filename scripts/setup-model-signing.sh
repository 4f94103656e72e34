#!/usr/bin/env bash
# Creates <repo>/.venv/model-signing with the OpenSSF reference signer/verifier
# (model-signing 1.1.1, plus pyOpenSSL, an undeclared need of it) for the interop tests.
# Idempotent: returns at once when the pinned versions are already installed.
set -euo pipefail

MODEL_SIGNING_VERSION="1.1.1"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv/model-signing"
python="${PYTHON:-python3}"

installed() {
    [ -x "${venv}/bin/model_signing" ] &&
        "${venv}/bin/python" - "$MODEL_SIGNING_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import OpenSSL  # noqa: F401  (pyOpenSSL must be importable)
sys.exit(0 if version("model-signing") == sys.argv[1] else 1)
PY
}

if installed; then
    echo "model-signing ${MODEL_SIGNING_VERSION} already in ${venv}"
    exit 0
fi

if [ ! -x "${venv}/bin/python" ]; then
    "${python}" -m venv "${venv}"
fi
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "model-signing==${MODEL_SIGNING_VERSION}" pyOpenSSL

if ! installed; then
    echo "error: model-signing ${MODEL_SIGNING_VERSION} did not install into ${venv}" >&2
    exit 1
fi
echo "model-signing ${MODEL_SIGNING_VERSION} installed in ${venv}"
