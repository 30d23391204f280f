#!/usr/bin/env bash
# Lint and type-check, as CI does before the tests: ruff over the repository, then mypy over the
# `ringline` package (settings for both in pyproject.toml). Needs .venv (scripts/install.sh).
#
#   bash scripts/lint.sh            # both; exit status non-zero if either finds something
#   bash scripts/lint.sh --fix      # let ruff fix what it safely can first (then review the diff)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
status=0

echo "== ruff check"
if [ "${1:-}" = "--fix" ]; then
  "$BIN/ruff" check --fix . || status=1
else
  "$BIN/ruff" check . || status=1
fi

# The code lives in contracts/, services/ and ringline/ but is imported as ringline.contracts and
# ringline.services (setuptools package-dir). mypy cannot follow the editable install's import
# hook, so link that layout into build/typecheck (git-ignored) and check it from there, then
# print paths as they are in the repository.
echo "== mypy"
tree=build/typecheck
rm -rf "$tree"
mkdir -p "$tree/ringline"
for entry in ringline/*; do
  [ "$(basename "$entry")" = "__pycache__" ] || ln -s "$PWD/$entry" "$tree/ringline/"
done
ln -s "$PWD/contracts" "$tree/ringline/contracts"
ln -s "$PWD/services" "$tree/ringline/services"
"$BIN/mypy" | sed -e "s#^$tree/ringline/contracts/#contracts/#" -e "s#^$tree/ringline/services/#services/#" \
  -e "s#^$tree/ringline/#ringline/#" || status=1

exit $status
