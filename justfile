# Recipes for developers and the staging rehearsal. `cargo install just` to use them.

pg_url := env_var_or_default("THYWILL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# The whole test suite, PostgreSQL included.
test:
    THYWILL_TEST_PG_URL={{pg_url}} cargo test --workspace

# The hostile-data harness run long (crates/validate/tests/fuzz.rs): CASES generated v1 databases per
# generation (G0-G3) and backend (SQLite, PostgreSQL), each migrated twice and validated. CI runs 8 (4 on PostgreSQL) of
# each. A failure prints its shrunk case as SQL: pin it as a `regression_*` test in that file, then fix it.
fuzz CASES="500":
    THYWILL_TEST_PG_URL={{pg_url}} PROPTEST_CASES={{CASES}} cargo test -p thywill-validator --test fuzz -- --nocapture

# Lints as CI would want them (and no unused dependency: scripts/check-unused-deps.sh).
lint:
    cargo fmt --all -- --check
    scripts/check-unused-deps.sh
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate the committed S fixtures (seed 7) for every generation, and G3 on a server in
# America/Chicago (fixtures/g3-s-chicago).
fixtures:
    for g in g0 g1 g2 g3; do cargo run --release -p thywill-bins --bin thywill-fixtures -- --generation $(echo $g | tr g G) --size S --seed 7 --out fixtures/$g-s $( [ $g = g1 ] || [ $g = g3 ] && echo --archives ); done
    cargo run --release -p thywill-bins --bin thywill-fixtures -- --generation G3 --size S --seed 7 --out fixtures/g3-s-chicago --archives --v1-timezone America/Chicago

# Generate dataset SIZE (S, M, L, Dense = M with 10x the marks) of generation GEN into out/GEN-SIZE.
dataset SIZE="M" GEN="G1":
    cargo run --release -p thywill-bins --bin thywill-fixtures -- --generation {{GEN}} --size {{SIZE}} --seed 7 --corruption 0.02 --out out/{{GEN}}-{{SIZE}} --archives

# Staging rehearsal of migration day on copies (arguments by position):
#   just rehearse /staging/thywill.db postgresql://…/scratch /staging/text_archives
# (V2 is the scratch target; "" = a SQLite file in the work folder). Prints the timeline against the budget.
rehearse V1 V2="" ARCHIVES="":
    cargo build --release -p thywill-bins --bin thywill-cutover --bin thywill-migrate --bin thywill-validate
    ./target/release/thywill-cutover --rehearsal --v1-db {{V1}} {{ if V2 != "" { "--rehearsal-v2-db " + V2 } else { "" } }} {{ if ARCHIVES != "" { "--archives-v1 " + ARCHIVES } else { "" } }} --work-dir rehearsal-$(date +%Y%m%d_%H%M%S)

# A verified online backup set of the live v1 (V1_DB_PATH, BACKUP_DIR from the environment by default).
backup V1="$V1_DB_PATH" DIR="$BACKUP_DIR" ARCHIVES="":
    cargo build --release -p thywill-bins --bin thywill-backup
    ./target/release/thywill-backup --v1-db {{V1}} --backup-dir {{DIR}} {{ if ARCHIVES != "" { "--archives-v1 " + ARCHIVES } else { "" } }}

# Roll back to v1 from the newest backup set and undo the latest v2 run (V1_DB_PATH, BACKUP_DIR, V2_DB_URL).
rollback *ARGS:
    cargo build --release -p thywill-bins --bin thywill-rollback
    ./target/release/thywill-rollback {{ARGS}}

# The migration runs recorded in v2 (V2_DB_URL, or --v2-db URL; --json): the run ids rollback takes.
runs *ARGS:
    cargo build --release -p thywill-bins --bin thywill-runs
    ./target/release/thywill-runs {{ARGS}}

# Every benchmark of `spec/quality.md` on dataset M (generated once, cached in target/thywill-bench):
# reader, detector, writer, archives, the whole migration on both backends, the validator.
# Each prints seconds, rows/s and peak RSS. `just bench L` for dataset L, `just bench Dense` for M with ten times
# the marks (both slow to generate).
bench SIZE="M":
    THYWILL_BENCH_SIZE={{SIZE}} cargo bench -p thywill-v1 --bench read
    THYWILL_BENCH_SIZE={{SIZE}} cargo bench -p thywill-detect --bench detect
    THYWILL_TEST_PG_URL={{pg_url}} cargo bench -p thywill-v2 --bench write
    cargo bench -p thywill-archive --bench archives
    THYWILL_TEST_PG_URL={{pg_url}} THYWILL_BENCH_SIZE={{SIZE}} cargo bench -p thywill-pipeline --bench migrate
    THYWILL_TEST_PG_URL={{pg_url}} THYWILL_BENCH_SIZE={{SIZE}} THYWILL_BENCH_ARCHIVES=1 cargo bench -p thywill-pipeline --bench migrate
    THYWILL_TEST_PG_URL={{pg_url}} THYWILL_BENCH_SIZE={{SIZE}} cargo bench -p thywill-validator --bench validate

# Migrate the bundled G1 fixture into ./thywill_v2.db (the README's first command).
demo:
    cargo run -p thywill-bins --bin thywill-migrate -- --v1-db fixtures/g1-s/v1.db --archives-v1 fixtures/g1-s/text_archives --archives-v2 text_archives_v2

# thywill-migrate on dataset M (2% corruption) against pgloader's plain copy of the clean dataset
# into PostgreSQL, alternately, three pairs; prints each pair and the median ratio (spec: ≥ 3×).
# Skipped with a notice where pgloader (Debian's package) is absent. `PAIRS=5 SIZE=L just bench-peers` to change.
bench-peers:
    THYWILL_TEST_PG_URL={{pg_url}} scripts/bench-peers.sh
