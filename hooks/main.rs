//! archy-hook: the oneshot helpers units and package managers run. `explain <id>` tells why an
//! app's manifest is invalid (the failing unit the generator emits for such an app runs it);
//! `secrets <id>` and `render <id>` run as `ExecStartPre=` of the app's unit.

use anyhow::{bail, Context as _};
use archy::catalog::ValidApp;
use archy::generate;
use archy::node::NodeSettings;
use archy::paths::{state_dir, Paths};
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
    /// Create the secrets the app declares, if missing (0600 files; values are never printed).
    Secrets { id: String },
    /// Render the app's config templates with node settings and secrets, where they changed.
    Render { id: String },
}

fn main() -> ExitCode {
    let result = match Args::parse().command {
        Cmd::Explain { id } => return explain(&id),
        Cmd::Secrets { id } => secrets(&id),
        Cmd::Render { id } => render(&id),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("archy-hook: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The valid app `id` and the node settings, or an error saying why not.
fn valid_app(id: &str) -> anyhow::Result<(Paths, NodeSettings, ValidApp)> {
    let paths = Paths::from_env();
    let (node, mut catalog) = generate::load_catalog(&paths);
    let node = node?;
    if let Some(app) = catalog.valid.remove(id) {
        return Ok((paths, node, app));
    }
    match catalog.invalid.get(id) {
        Some(bad) => bail!(
            "app `{id}` is invalid: {}",
            bad.errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        None => bail!("no manifest for app `{id}`"),
    }
}

fn state() -> anyhow::Result<std::path::PathBuf> {
    state_dir().context("neither XDG_STATE_HOME nor HOME is set")
}

fn secrets(id: &str) -> anyhow::Result<()> {
    let (_, _, app) = valid_app(id)?;
    let state = state()?;
    for (name, kind) in &app.manifest.secrets {
        let created = archy::secrets::ensure(&state, name.as_str(), *kind)
            .with_context(|| format!("creating secret `{name}`"))?;
        if created {
            println!("created secret `{name}` for {id}");
        }
    }
    Ok(())
}

fn render(id: &str) -> anyhow::Result<()> {
    let (paths, node, app) = valid_app(id)?;
    let state = state()?;
    let outcomes = archy::config::render(&paths, &state, &app.manifest, &node)?;
    for o in outcomes.iter().filter(|o| o.changed) {
        println!("rendered {}", o.target.display());
    }
    Ok(())
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
