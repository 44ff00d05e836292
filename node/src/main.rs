//! `ebill-node`: see the crate documentation of `ebill_node`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

/// How long exit waits for background tasks after the node has stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
        // A log line that cannot be written (stderr a closed pipe: whoever read the logs
        // has gone) is dropped. By default tracing reports it with eprintln!, which
        // panics there, and a node then hung on SIGTERM instead of stopping.
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "reindex") {
        let args = ebill_node::config::ReindexArgs::parse_from(
            std::iter::once(std::ffi::OsString::from("ebill-node reindex"))
                .chain(argv.into_iter().skip(2)),
        );
        return exit(ebill_node::reindex(&args));
    }
    let args = Args::parse();
    let result = NodeConfig::from_args(&args).and_then(|cfg| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let result = runtime.block_on(ebill_node::run(cfg));
        // `run` joins what it started; a task still blocked after that must not hold the
        // process forever.
        runtime.shutdown_timeout(SHUTDOWN_GRACE);
        result
    });
    exit(result)
}

fn exit(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: that panics when stderr is a closed pipe.
            let _ = writeln!(std::io::stderr(), "ebill-node: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
