//! archy-hook: the oneshot helpers units and package managers run, and people use.
//!
//! `explain <id>` tells why an app's manifest is invalid (the failing unit the generator emits for
//! such an app runs it). The app's own unit runs `preflight` (as `ExecCondition=`), then `volumes`,
//! `secrets`, `render`, `ensure-image`, `init` and `leftover` (as `ExecStartPre=`).

use anyhow::{bail, Context as _};
use archy::catalog::ValidApp;
use archy::generate;
use archy::journal::HookLog;
use archy::node::{ByteSize, NodeSettings};
use archy::paths::{state_dir, Paths};
use archy::podman;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod admin;
mod package;
mod start;
use admin::*;
use package::*;
use start::*;

/// archy's oneshot helpers for units, package managers and people. Logs go to the journal with
/// ARCHY_HOOK= and ARCHY_APP= fields, and to stderr when run from a terminal.
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
    /// Create the host directories the app's volumes mount, one step at a time, refusing a
    /// symbolic link, FIFO or file a container planted on the way (nothing is followed).
    Volumes { id: String },
    /// Create the secrets the app declares, if missing (0600 files; values are never printed).
    Secrets { id: String },
    /// Render the app's config templates with node settings and secrets, where they changed.
    Render { id: String },
    /// Make sure the app's image is present: local storage, else its local build context, else a
    /// pull from a registry node.toml allows.
    EnsureImage { id: String },
    /// Clear a leftover container of the app's name that podman can neither stop nor replace: one
    /// podman still records as paused although its processes and conmon are gone.
    Leftover { id: String },
    /// Run the app's init steps that are not done yet (each once: until what it creates exists),
    /// each in a one-off container of the app's image without a network.
    Init { id: String },
    /// Show an init step's kept output (a wallet's seed) to the person at the terminal, once;
    /// records that it was shown.
    Reveal {
        id: String,
        /// The init step, as the manifest names it.
        step: String,
        /// Show it although it was shown before.
        #[arg(long)]
        again: bool,
    },
    /// Copy a new version of a file the app asked archy to back up ([[backup]] NAME) into
    /// node.toml's backup_dir, keeping the last ones; run by its path unit.
    Backup { id: String, name: String },
    /// Delete what a removed app left: its data, state (configs, kept init outputs such as a
    /// wallet seed), backups and the secrets only it declared. Lists them and deletes nothing
    /// without --yes; refuses while the app has a manifest.
    Purge {
        id: String,
        /// Delete them.
        #[arg(long)]
        yes: bool,
    },
    /// Exit 1 (the unit is then not started, and not restarted in a loop) when free space under
    /// the app's data dir is below its disk reserve.
    Preflight { id: String },
    /// Replace a secret (e.g. bitcoind-rpc) with a new one. archy-secret@<name>.path then
    /// re-renders and restarts the apps that use it.
    Rotate {
        /// The secret's name, as apps declare it under [secrets].
        name: String,
    },
    /// Apply a changed secret: re-render the configs of the apps that declare it and restart the
    /// running ones (run by archy-secret@<name>.service).
    SecretChanged { name: String },
    /// Apply changed manifests: stop removed apps (keeping their data), reload, start new ones,
    /// restart exactly the changed ones; repeat until nothing changed meanwhile. Run by
    /// archy-reconcile.service.
    Reconcile,
    /// Check an app's update (run by its transient archy-update@<id>.<n> timer): keep it once it
    /// has been healthy for its grace period, roll it back when it is not healthy by its deadline.
    UpdateCheck { id: String },
    /// Return an app to its previous definition (before its last update), and do not try the
    /// current one again until its manifest or a template changes.
    Rollback { id: String },
    /// For package managers (as root): have the node user's manager apply the manifests now.
    /// Does nothing harmful when that manager is not running: it applies them at its next start.
    PostInstall,
    /// For package managers (as root), before an app's manifest is removed: stop the app.
    PreRemove { id: String },
    /// A table of apps: unit state, health, active since, restarts, last error. Run as root, it
    /// shows the service user's (node.toml `user`) apps.
    Status {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if matches!(args.command, Cmd::Status { .. }) {
        if let Some(code) = as_node_user() {
            return code;
        }
    }
    let (hook, id, result) = match args.command {
        Cmd::Explain { id } => return explain(&id),
        Cmd::Volumes { id } => ("volumes", id.clone(), volumes(&id)),
        Cmd::Secrets { id } => ("secrets", id.clone(), secrets(&id)),
        Cmd::Render { id } => ("render", id.clone(), render(&id)),
        Cmd::EnsureImage { id } => ("ensure-image", id.clone(), ensure_image(&id)),
        Cmd::Preflight { id } => ("preflight", id.clone(), preflight(&id)),
        Cmd::Init { id } => ("init", id.clone(), init(&id)),
        Cmd::Leftover { id } => ("leftover", id.clone(), leftover(&id)),
        Cmd::Backup { id, name } => ("backup", id.clone(), backup(&id, &name)),
        Cmd::Purge { id, yes } => ("purge", id.clone(), purge(&id, yes)),
        Cmd::Reveal { id, step, again } => ("reveal", id.clone(), reveal(&id, &step, again)),
        Cmd::Rotate { name } => ("rotate", String::new(), rotate(&name)),
        Cmd::SecretChanged { name } => ("secret-changed", String::new(), secret_changed(&name)),
        Cmd::Status { json } => ("status", String::new(), status(json)),
        Cmd::Reconcile => ("reconcile", String::new(), reconcile()),
        Cmd::UpdateCheck { id } => ("update-check", id.clone(), update_check(&id)),
        Cmd::Rollback { id } => ("rollback", id.clone(), rollback(&id)),
        Cmd::PostInstall => ("post-install", String::new(), post_install()),
        Cmd::PreRemove { id } => ("pre-remove", id.clone(), pre_remove(&id)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let app = (!id.is_empty()).then_some(id.as_str());
            HookLog::new(hook, app).error(&format!("{e:#}"));
            archy::journal::notify_status(&format!("{} {hook}: {e:#}", archy::names::HOOK));
            ExitCode::FAILURE
        }
    }
}

/// Run by root (an admin at the console), `status` is about the service user's apps: the same
/// command again as that user (node.toml's `user`), in its manager's environment. None when not
/// root; else the command's exit status.
fn as_node_user() -> Option<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let run = || -> anyhow::Result<u8> {
        let user = archy::service_user::node_user(&Paths::from_env())?;
        if user.uid.is_root() {
            bail!("node.toml's service user is root: archy runs apps as an unprivileged user");
        }
        let mut cmd = std::process::Command::new("/proc/self/exe");
        cmd.args(std::env::args_os().skip(1));
        archy::service_user::as_user(&mut cmd, &user);
        let status = cmd
            .status()
            .with_context(|| format!("running archy-hook as {}", user.name))?;
        Ok(status.code().map_or(1, |c| c as u8))
    };
    Some(match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("archy-hook: {e:#}");
            ExitCode::FAILURE
        }
    })
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
