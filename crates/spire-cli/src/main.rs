//! The `spire` binary: parse arguments, dispatch, map errors to exit codes.

mod admin;
mod cli;
mod commands;
mod output;
mod progress;
mod schedule;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // delta-kernel logs an ERROR whenever a table that does not exist yet is opened,
            // which Spire expects and handles (it creates the table): keep that quiet unless
            // SPIRE_LOG asks for it.
            tracing_subscriber::EnvFilter::try_from_env("SPIRE_LOG")
                .unwrap_or_else(|_| "warn,buoyant_kernel::snapshot::builder=off".into()),
        )
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
