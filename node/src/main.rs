//! `ebill-node`: see the crate documentation of `ebill_node`.

use std::io::IsTerminal;

use clap::Parser;
use ebill_node::config::{Args, NodeConfig};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's allocator: see `ebill_node::alloc`.
#[global_allocator]
static ALLOCATOR: ebill_node::alloc::Allocator = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ebill_node::alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let result = NodeConfig::from_args(&args).and_then(|cfg| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(ebill_node::run(cfg))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ebill-node: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
