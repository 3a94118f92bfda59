//! `thywill-fixtures`: generates deterministic v1 fixture databases (see `thywill_fixturegen`).
fn main() {
    std::process::exit(thywill_fixturegen::cli_main(std::env::args().skip(1)))
}
