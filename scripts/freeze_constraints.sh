#!/usr/bin/env bash
# Regenerate constraints.txt from a fresh virtual environment.
#
# Usage: scripts/freeze_constraints.sh PROJECT_DIR...   (make constraints)
# Pins already in constraints.txt are kept, so only new dependencies get new
# pins; with UPGRADE=1 every package takes its newest release instead.
set -euo pipefail

cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

constraint_args=()
if [[ "${UPGRADE:-0}" != 1 && -f constraints.txt ]]; then
    constraint_args=(--constraint constraints.txt)
fi
editable_args=()
for project in "$@"; do
    editable_args+=(--editable "$project")
done

"$python" -m venv "$workdir/venv"
pip=("$workdir/venv/bin/python" -m pip)
"${pip[@]}" install --quiet "${constraint_args[@]}" --upgrade pip setuptools wheel
"${pip[@]}" install --quiet "${constraint_args[@]}" \
    --requirement requirements-dev.txt "${editable_args[@]}"

{
    echo "# Pinned versions of every dependency, used by make install and CI."
    echo "# Regenerate with: make constraints   (UPGRADE=1 to take new releases)"
    "${pip[@]}" freeze --all --exclude-editable
} >"$workdir/constraints.txt"
mv "$workdir/constraints.txt" constraints.txt
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) pins)"
