//! The `hlsd` binary: flags, logging, bind, serve until SIGINT/SIGTERM.

use clap::Parser;
use hlsd::Config;
use std::io::{IsTerminal, Write};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut config = Config::parse();
    // A configuration that cannot work or protects nothing: exit 2, like
    // clap's own usage errors.
    let warnings = match config.finalize() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("hlsd: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = hlsd::server::check_tls(&config) {
        eprintln!("hlsd: {e}");
        return std::process::ExitCode::from(2);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("HLSD_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,srt_protocol=warn,srt_tokio=warn")
    });
    // Kept to the end of main: dropping it flushes the last lines.
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .thread_name("log")
        .finish(std::io::BufWriter::with_capacity(
            64 << 10,
            std::io::stderr(),
        ));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    if config.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    for w in warnings {
        tracing::warn!("{w}");
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hlsd: cannot listen on {}: {e}", config.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let storage = config.storage.display().to_string();
    let server = match hlsd::server::prepare(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hlsd: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Scripts and tests read this line to learn an ephemeral port; it comes
    // after crash recovery, so the storage is consistent from here on.
    let scheme = if server.is_tls() { "https" } else { "http" };
    println!("hlsd listening on {scheme}://{addr} (storage: {storage})");
    let _ = std::io::stdout().flush();
    match server.serve(listener, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hlsd: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
