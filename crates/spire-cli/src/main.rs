//! The `spire` binary: parse arguments, dispatch, map errors to exit codes.

mod admin;
mod cli;
mod commands;
mod dead_letters;
mod lake;
mod output;
mod progress;
mod schedule;

use clap::Parser;

/// Messages of the Delta crates that are expected and handled, kept quiet unless
/// `SPIRE_LOG` names their targets: delta-kernel logs an ERROR whenever a table that does
/// not exist yet is opened (Spire then creates it), and the Delta writer a WARN for every
/// binary column it keeps no statistics for (`events_raw.payload_bytes`, by design).
const EXPECTED_NOISE: &str =
    "buoyant_kernel::snapshot::builder=off,deltalake_core::writer::stats=error";

/// The log filter: `SPIRE_LOG` (e.g. `info`, `spire_scheduler=debug`) or `warn`, plus
/// [`EXPECTED_NOISE`] unless `SPIRE_LOG` mentions those crates itself.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let fallback = || tracing_subscriber::EnvFilter::new(format!("warn,{EXPECTED_NOISE}"));
    match std::env::var("SPIRE_LOG") {
        Err(_) => fallback(),
        Ok(asked) => {
            let spec = if asked.contains("buoyant_kernel") || asked.contains("deltalake_core") {
                asked.clone()
            } else {
                format!("{asked},{EXPECTED_NOISE}")
            };
            tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|e| {
                eprintln!(
                    "warning: SPIRE_LOG={asked:?} is not a log filter ({e}); logging warnings"
                );
                fallback()
            })
        }
    }
}

fn main() {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(commands::dispatch(cli)) {
        let mut printed = e.to_string();
        eprintln!("error: {printed}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !printed.contains(&text) {
                eprintln!("  caused by: {text}");
                printed.push_str(&text);
            }
            source = s.source();
        }
        std::process::exit(e.kind().exit_code());
    }
}
