//! archy-hook: the oneshot helpers units and package managers run, and people use.
//!
//! `explain <id>` tells why an app's manifest is invalid (the failing unit the generator emits for
//! such an app runs it). The app's own unit runs `preflight` (as `ExecCondition=`), then `secrets`,
//! `render` and `ensure-image` (as `ExecStartPre=`).

use anyhow::{bail, Context as _};
use archy::catalog::ValidApp;
use archy::generate;
use archy::journal::HookLog;
use archy::node::{ByteSize, NodeSettings};
use archy::paths::{state_dir, Paths};
use archy::podman;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    /// Create the secrets the app declares, if missing (0600 files; values are never printed).
    Secrets { id: String },
    /// Render the app's config templates with node settings and secrets, where they changed.
    Render { id: String },
    /// Make sure the app's image is present: local storage, else its local build context, else a
    /// pull from a registry node.toml allows.
    EnsureImage { id: String },
    /// Exit 1 (the unit is then not started, and not restarted in a loop) when free space under
    /// the app's data dir is below its disk reserve.
    Preflight { id: String },
}

fn main() -> ExitCode {
    let (hook, id, result) = match Args::parse().command {
        Cmd::Explain { id } => return explain(&id),
        Cmd::Secrets { id } => ("secrets", id.clone(), secrets(&id)),
        Cmd::Render { id } => ("render", id.clone(), render(&id)),
        Cmd::EnsureImage { id } => ("ensure-image", id.clone(), ensure_image(&id)),
        Cmd::Preflight { id } => ("preflight", id.clone(), preflight(&id)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            HookLog::new(hook, Some(&id)).error(&format!("{e:#}"));
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
        println!(
            "archy app `{id}` is valid. If its unit still fails, run `systemctl --user daemon-reload`."
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "no manifest for `{id}` in {} or {} (or it is masked)",
        paths.vendor_apps().display(),
        paths.admin_apps().display()
    );
    ExitCode::FAILURE
}

fn secrets(id: &str) -> anyhow::Result<()> {
    let (_, _, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("secrets", Some(id));
    for (name, kind) in &app.manifest.secrets {
        let created = archy::secrets::ensure(&state, name.as_str(), *kind)
            .with_context(|| format!("creating secret `{name}`"))?;
        if created {
            log.notice(&format!("created secret `{name}`"));
        }
    }
    Ok(())
}

fn render(id: &str) -> anyhow::Result<()> {
    let (paths, node, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("render", Some(id));
    let outcomes = archy::config::render(&paths, &state, &app.manifest, &node)?;
    for o in outcomes.iter().filter(|o| o.changed) {
        log.info(&format!("rendered {}", o.target.display()));
    }
    Ok(())
}

fn ensure_image(id: &str) -> anyhow::Result<()> {
    let (paths, node, app) = valid_app(id)?;
    let log = HookLog::new("ensure-image", Some(id));
    let image = &app.manifest.image;
    let reference = image.reference.as_str();
    let policy = image.pull;
    let present = podman::image_exists(reference).context("running podman")?;
    use archy::manifest::PullPolicy;
    if present && matches!(policy, PullPolicy::Missing | PullPolicy::Never) {
        return Ok(());
    }
    if !present {
        if let Some(sub) = &image.build {
            let context = paths.build_context(sub.as_str());
            if context.is_dir() {
                log.notice(&format!("building {reference} from {}", context.display()));
                if podman::build(reference, &context).context("running podman build")? {
                    return Ok(());
                }
                bail!(
                    "podman build of {reference} from {} failed",
                    context.display()
                );
            }
            log.notice(&format!("build context {} is missing", context.display()));
        }
    }
    if policy == PullPolicy::Never {
        bail!(
            "image {reference} is not present and pull = \"never\": load it (podman load) or build it"
        );
    }
    let registry = podman::registry_of(reference);
    let allowed = node
        .registries
        .allowed
        .iter()
        .any(|r| r.as_str() == registry);
    if !allowed {
        if present {
            return Ok(()); // pull = always/newer, but the registry is not allowed: keep what we have
        }
        bail!(
            "image {reference} is not present, and its registry {registry} is not allowed: \
             add it to [registries] allowed in /etc/archipelago/node.toml, or load the image \
             with `podman load`"
        );
    }
    let insecure = node
        .registries
        .insecure
        .iter()
        .any(|r| r.as_str() == registry);
    log.notice(&format!("pulling {reference}"));
    let out = podman::pull(reference, !insecure).context("running podman pull")?;
    if !out.status.success() {
        bail!(
            "pulling {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn preflight(id: &str) -> anyhow::Result<()> {
    let (_, node, app) = valid_app(id)?;
    let reserve = app
        .manifest
        .service
        .disk_reserve
        .unwrap_or(node.disk_reserve);
    let dir = std::path::Path::new(node.data_dir.as_str()).join(id);
    let free = archy::disk::available(&dir)
        .with_context(|| format!("checking free space at {}", dir.display()))?;
    if free < reserve.0 {
        bail!(
            "not starting: {} free under {}, below the disk reserve of {reserve}; free some space, \
             then `systemctl --user start archy-{id}`",
            ByteSize(free),
            dir.display()
        );
    }
    Ok(())
}
