//! The store benchmark (`cargo bench -p ebill-store`): the same program as
//! `examples/store_bench.rs`, which also runs in the dev profile
//! (`cargo run -p ebill-store --example store_bench`).

#[path = "../examples/store_bench.rs"]
mod store_bench;

fn main() {
    store_bench::main();
}
