#!/usr/bin/env bash
# Unused dependencies: every name under [dependencies] of each crate's Cargo.toml must be used
# (`name::`, `use name`, `extern crate name`; hyphens as underscores) in the crate's src/ or
# build.rs, and every name under [dev-dependencies] in its src/, tests/, benches/ or examples/
# (and not repeat one of [dependencies], which the tests have already).
# A dependency that is needed without being named in the code (a -sys crate linked for its
# bundled C library, a feature switched on for another crate) says so with a trailing
# `# not named: <why>` on its line. Grep only: fast, no tool to install. `just lint` and .ci/run
# run it; it exits non-zero listing each unused dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

# The dependency names of section $2 ("dependencies" or "dev-dependencies") of manifest $1,
# without those marked `# not named:`.
deps() {
  awk -v want="[$2]" '
    /^\[/ { inside = ($0 == want); next }
    inside && /^[A-Za-z0-9_-]+[ .=]/ && !/# not named:/ {
      name = $0; sub(/[ .=].*/, "", name); print name
    }' "$1"
}

# Whether crate name $1 (hyphens as underscores) is named in the .rs files under the folders $2…
used() {
  local id=${1//-/_} dirs=()
  shift
  for d in "$@"; do [ -e "$d" ] && dirs+=("$d"); done
  [ ${#dirs[@]} -gt 0 ] || return 1
  grep -rqE --include='*.rs' "(^|[^A-Za-z0-9_:])(::)?${id}::|use ${id}( |;|::)|extern crate ${id}\b" "${dirs[@]}"
}

for manifest in crates/*/Cargo.toml bins/Cargo.toml; do
  dir=$(dirname "$manifest")
  for dep in $(deps "$manifest" dependencies); do
    if ! used "$dep" "$dir/src" "$dir/build.rs"; then
      echo "unused-deps: $manifest: [dependencies] $dep is not named in $dir/src" >&2
      status=1
    fi
  done
  normal=" $(deps "$manifest" dependencies | tr '\n' ' ') "
  for dep in $(deps "$manifest" dev-dependencies); do
    if [[ $normal == *" $dep "* ]]; then
      echo "unused-deps: $manifest: [dev-dependencies] $dep repeats a [dependencies] entry" >&2
      status=1
    elif ! used "$dep" "$dir/src" "$dir/tests" "$dir/benches" "$dir/examples"; then
      echo "unused-deps: $manifest: [dev-dependencies] $dep is not named in $dir's sources" >&2
      status=1
    fi
  done
done
[ $status -eq 0 ] && echo "unused-deps: every dependency is used"
exit $status
