#!/usr/bin/env bash
# Creates <repo>/.venv/workflow with Snakemake and its Slurm executor plugin, pinned, for
# workflows/ and its test (tests/workflow.rs). Idempotent: returns at once when the pinned
# versions are installed and snakemake runs; a venv that no longer runs (moved or copied from
# another checkout: its scripts name the old interpreter path) is recreated.
set -euo pipefail

SNAKEMAKE_VERSION="9.27.1"
SLURM_PLUGIN_VERSION="2.8.0"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv/workflow"
python="${PYTHON:-python3}"

installed() {
    "${venv}/bin/snakemake" --version >/dev/null 2>&1 &&
        "${venv}/bin/python" - "$SNAKEMAKE_VERSION" "$SLURM_PLUGIN_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
wanted = {"snakemake": sys.argv[1], "snakemake-executor-plugin-slurm": sys.argv[2]}
sys.exit(0 if all(version(name) == v for name, v in wanted.items()) else 1)
PY
}

if installed; then
    echo "snakemake ${SNAKEMAKE_VERSION} already in ${venv}"
    exit 0
fi

"${python}" -m venv --clear "${venv}"
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "snakemake==${SNAKEMAKE_VERSION}" "snakemake-executor-plugin-slurm==${SLURM_PLUGIN_VERSION}"

if ! installed; then
    echo "error: snakemake ${SNAKEMAKE_VERSION} did not install into ${venv}" >&2
    exit 1
fi
echo "snakemake ${SNAKEMAKE_VERSION} installed in ${venv}"
