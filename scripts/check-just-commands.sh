#!/usr/bin/env bash
# Every `just …` command the runbook and the README show, as an operator would type it, must be
# accepted by just (recipe exists, arguments fit): each runs with --dry-run, which prints the
# commands without running them. CI runs this; it exits non-zero naming the first that fails.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
while IFS= read -r line; do
  cmd=${line%%#*}
  read -r -a words <<<"$cmd"
  [ "${words[0]:-}" = just ] || continue
  # After the recipe's name, `NAME=value` is a positional value, not a named argument: just
  # passes recipe arguments by position (a runbook once said `just rehearse V1=…`).
  for w in "${words[@]:2}"; do
    if [[ $w =~ ^[A-Z_][A-Z0-9_]*= ]]; then
      echo "just-check: FAILED: $cmd: '$w' would be passed as a value; just takes recipe arguments by position" >&2
      status=1
      continue 2
    fi
  done
  if just --dry-run "${words[@]:1}" >/dev/null 2>/tmp/just-check.err; then
    echo "just-check: ok: $cmd"
  else
    echo "just-check: FAILED: $cmd" >&2
    cat /tmp/just-check.err >&2
    status=1
  fi
done < <(grep -hE '^\s*just ' docs/runbook.md README.md | sed -E 's/^\s+//')
exit $status
