//! archy-hook: the oneshot helpers units and package managers run. `explain <id>` tells why an
//! app's manifest is invalid; the failing unit the generator emits for such an app runs it.

use archy::generate;
use archy::paths::Paths;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// archy's oneshot helpers for units, package managers and people.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Say why an app's manifest is invalid (exit 1), or that it is valid (exit 0).
    Explain {
        /// The app id (the manifest's file name without .toml).
        id: String,
    },
}

fn main() -> ExitCode {
    match Args::parse().command {
        Cmd::Explain { id } => explain(&id),
    }
}

fn explain(id: &str) -> ExitCode {
    let paths = Paths::from_env();
    let (_, catalog) = generate::load_catalog(&paths);
    if let Some(app) = catalog.invalid.get(id) {
        println!("archy app `{id}` is invalid and will not start:");
        for e in &app.errors {
            println!("  {e}");
        }
        println!("Fix the file, then run `systemctl --user daemon-reload`.");
        return ExitCode::FAILURE;
    }
    if catalog.valid.contains_key(id) {
        println!("archy app `{id}` is valid. If its unit still fails, run `systemctl --user daemon-reload`.");
        return ExitCode::SUCCESS;
    }
    println!(
        "no manifest for `{id}` in {} or {} (or it is masked)",
        paths.vendor_apps().display(),
        paths.admin_apps().display()
    );
    ExitCode::FAILURE
}
