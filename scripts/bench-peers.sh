#!/usr/bin/env bash
# `just bench-peers`: the whole migration of dataset M (2% corruption) into PostgreSQL against
# pgloader's plain copy of the same sizes without corruption, alternately, PAIRS pairs (default 3),
# on this machine in one run. Prints each pair, the median of each side and the median ratio.
# pgloader comes from Debian's package; without it the recipe says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${PAIRS:-3}
size=${SIZE:-M}
url=${THYWILL_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}
if ! command -v pgloader >/dev/null 2>&1; then
  echo "bench-peers: pgloader is not installed (apt-get install pgloader); skipped"
  exit 0
fi
psql "$url" -qtAc 'select 1' >/dev/null || { echo "bench-peers: PostgreSQL not reachable at $url" >&2; exit 1; }
cargo build --quiet --release -p thywill-bins --bin thywill-migrate --bin thywill-fixtures
data=target/thywill-bench/peers-$size
gen() { # $1 corruption, $2 folder
  if [ ! -s "$2/v1.db" ]; then
    ./target/release/thywill-fixtures --generation G1 --size "$size" --seed 7 --corruption "$1" --out "$2" >/dev/null
  fi
}
gen 0.02 "$data/corrupt"
gen 0 "$data/clean"
base=${url%/*}
db_url() { echo "$base/$1"; }
fresh() { PGOPTIONS=--client-min-messages=warning psql "$url" -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null; }
drop() { PGOPTIONS=--client-min-messages=warning psql "$url" -qc "DROP DATABASE IF EXISTS $1" >/dev/null; }
trap 'drop thywill_peers_ours; drop thywill_peers_pgloader' EXIT
now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
ours=(); theirs=()
for i in $(seq 1 "$pairs"); do
  fresh thywill_peers_ours
  t0=$(now)
  ./target/release/thywill-migrate -q --v1-db "$data/corrupt/v1.db" --v2-db "$(db_url thywill_peers_ours)" >/dev/null
  t1=$(now)
  fresh thywill_peers_pgloader
  t2=$(now)
  pgloader --quiet "sqlite://$PWD/$data/clean/v1.db" "$(db_url thywill_peers_pgloader)" >/dev/null 2>&1 \
    || { echo "bench-peers: pgloader failed" >&2; exit 1; }
  t3=$(now)
  o=$(calc "$t1 - $t0"); p=$(calc "$t3 - $t2")
  ours+=("$o"); theirs+=("$p")
  printf 'pair %d: thywill-migrate %.2f s, pgloader %.2f s, ratio %.2fx\n' "$i" "$o" "$p" "$(calc "$p / $o")"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mo=$(median "${ours[@]}"); mp=$(median "${theirs[@]}")
printf 'median: thywill-migrate %.2f s, pgloader %.2f s, ratio %.2fx (dataset %s, %d pairs)\n' \
  "$mo" "$mp" "$(calc "$mp / $mo")" "$size" "$pairs"
