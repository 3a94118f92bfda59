# Recipes for developers and the staging rehearsal. `cargo install just` to use them.

pg_url := env_var_or_default("THYWILL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# The whole test suite, PostgreSQL included.
test:
    THYWILL_TEST_PG_URL={{pg_url}} cargo test --workspace

# Lints as CI would want them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate the committed S fixtures (seed 7) for every generation.
fixtures:
    for g in g0 g1 g2 g3; do cargo run --release -p thywill-bins --bin thywill-fixtures -- --generation $(echo $g | tr g G) --size S --seed 7 --out fixtures/$g-s $( [ $g = g1 ] || [ $g = g3 ] && echo --archives ); done

# Generate dataset SIZE (S, M, L) of generation GEN into out/GEN-SIZE.
dataset SIZE="M" GEN="G1":
    cargo run --release -p thywill-bins --bin thywill-fixtures -- --generation {{GEN}} --size {{SIZE}} --seed 7 --corruption 0.02 --out out/{{GEN}}-{{SIZE}} --archives
