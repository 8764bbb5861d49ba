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

fn explain(id: &str) -> ExitCode {
    // run by the unit of an app quadlet refused to convert: the reason is the unit's
    if let Some(why) = std::env::var(archy::render::QUADLET_ERROR_ENV)
        .ok()
        .filter(|w| !w.is_empty())
    {
        println!("archy app `{id}` has no service: {why}");
        if libsystemd::logging::connected_to_journal() {
            HookLog::new("explain", Some(id)).error(&why);
            archy::journal::notify_status(&format!("not converted: {why}"));
        }
        return ExitCode::FAILURE;
    }
    let paths = Paths::from_env();
    let (_, catalog) = generate::load_catalog(&paths);
    if let Some(app) = catalog.invalid.get(id) {
        let off_network = app.errors.iter().any(archy::networks::is_unsupported);
        if off_network {
            println!("archy app `{id}` does not run on the node's network and will not start:");
        } else {
            println!("archy app `{id}` is invalid and will not start:");
        }
        for e in &app.errors {
            println!("  {e}");
        }
        if off_network {
            println!("It starts again when node.toml's `network` is one it lists in [networks].");
        } else {
            println!("Fix the file, then run `systemctl --user daemon-reload`.");
        }
        if libsystemd::logging::connected_to_journal() {
            // run by the app's failing unit: the reason goes into the journal with the unit's
            // name and invocation (a short-lived process's stdout may lose them), and into the
            // unit's status line, so `systemctl --user status` shows it whatever the journal did
            let log = HookLog::new("explain", Some(id));
            for e in &app.errors {
                log.error(&e.to_string());
            }
            if let Some(first) = app.errors.first() {
                let what = if off_network {
                    "not on this network"
                } else {
                    "invalid manifest"
                };
                archy::journal::notify_status(&format!("{what}: {first}"));
            }
        }
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

fn volumes(id: &str) -> anyhow::Result<()> {
    let (_, node, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("volumes", Some(id));
    for d in archy::volumes::host_dirs(&node, &state, &app.manifest) {
        let created = archy::volumes::ensure(&d).with_context(|| {
            format!(
                "volume `{}` of app `{id}`, at {} (app `{}`'s container writes there)",
                d.target,
                d.path().display(),
                d.writer
            )
        })?;
        for p in created {
            log.info(&format!(
                "created {} for volume `{}`",
                p.display(),
                d.target
            ));
        }
    }
    Ok(())
}

fn secrets(id: &str) -> anyhow::Result<()> {
    let (_, _, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("secrets", Some(id));
    for (name, kind) in &app.manifest.secrets {
        let created = archy::secrets::ensure(&state, name.as_str(), kind.kind)
            .with_context(|| format!("creating secret `{name}`"))?;
        if created {
            log.notice(&format!("created secret `{name}`"));
        }
    }
    // what the app declared, for a purge once its manifest is gone
    let names: String = app
        .manifest
        .secrets
        .keys()
        .map(|n| format!("{n}\n"))
        .collect();
    let file = archy::purge::secret_names_file(&state, id);
    archy::secrets::create_private_dir(file.parent().expect("below the state dir"))
        .and_then(|()| archy::atomic::write(&file, names.as_bytes(), 0o600))
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

fn purge(id: &str, yes: bool) -> anyhow::Result<()> {
    let id = archy::text::Id::try_from(id.to_string()).map_err(anyhow::Error::msg)?;
    let id = id.as_str();
    let paths = Paths::from_env();
    let (node, catalog) = generate::load_catalog(&paths);
    let node = node.map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = state()?;
    let installed = catalog.ids().contains(id);
    let in_use: std::collections::BTreeSet<String> = catalog
        .valid
        .values()
        .flat_map(|a| a.manifest.secrets.keys().map(|k| k.to_string()))
        .collect();
    let declared: Vec<String> =
        std::fs::read_to_string(archy::purge::secret_names_file(&state, id))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
    let exists = |p: &std::path::Path| std::fs::symlink_metadata(p).is_ok();
    let items = match archy::purge::plan(&node, &state, id, installed, &declared, &in_use, exists) {
        Ok(items) => items,
        Err(archy::purge::Refusal::Installed) => bail!(
            "app `{id}` is installed: remove it first (its manifest or package); purge deletes only what a removed app left"
        ),
        Err(archy::purge::Refusal::Nothing) => bail!("nothing of app `{id}` is left to purge"),
    };
    let container = archy::names::app(id).container();
    if podman::container_exists(&container) {
        bail!("the container {container} still exists: stop the app first");
    }
    println!("purging app `{id}` deletes, for good:");
    for i in &items {
        println!("  {}: {}", i.path.display(), i.what);
    }
    if !yes {
        bail!("nothing deleted: run `archy-hook purge {id} --yes` to delete the above");
    }
    let log = HookLog::new("purge", Some(id));
    for i in &items {
        // files the app's container wrote may belong to its subordinate ids: delete in podman's
        // user namespace, where the service user owns them all; rm never follows a link
        let path = i.path.to_string_lossy().into_owned();
        podman::unshare_remove(&path).with_context(|| format!("deleting {path}"))?;
        log.notice(&format!("purged {path}: {}", i.what));
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
    present_image(&paths, &node, &app, &log)?;
    // the image is there now: what its own user would make of the app's mounts
    let reference = app.manifest.image.reference.as_str();
    let user = podman::image_user(reference).context("running podman image inspect")?;
    use archy::manifest::UnmappedUser;
    match user.and_then(|u| app.manifest.unmapped_image_user(&u)) {
        Some(UnmappedUser::Refused(why)) => bail!("{reference}: {why}"),
        Some(UnmappedUser::Warning(why)) => log.warning(&format!("{reference}: {why}")),
        None => {}
    }
    Ok(())
}

fn present_image(
    paths: &Paths,
    node: &NodeSettings,
    app: &ValidApp,
    log: &HookLog,
) -> anyhow::Result<()> {
    use archy::image::Action;
    let image = &app.manifest.image;
    let reference = image.reference.as_str();
    let present = podman::image_exists(reference).context("running podman")?;
    let context = image.build.as_ref().map(|sub| {
        let dir = paths.build_context(sub.as_str());
        let is_dir = dir.is_dir();
        (dir, is_dir)
    });
    let decision = archy::image::decide(image, present, context, &node.registries);
    if let Some(dir) = &decision.missing_context {
        log.notice(&format!("build context {} is missing", dir.display()));
    }
    match decision.action {
        Action::Keep => Ok(()),
        Action::Refuse(why) => bail!("{why}"),
        Action::Build(context) => {
            log.notice(&format!("building {reference} from {}", context.display()));
            if !podman::build(reference, &context).context("running podman build")? {
                bail!(
                    "podman build of {reference} from {} failed",
                    context.display()
                );
            }
            Ok(())
        }
        Action::Pull { tls_verify } => {
            log.notice(&format!("pulling {reference}"));
            let out = podman::pull(reference, tls_verify).context("running podman pull")?;
            if !out.status.success() {
                bail!(
                    "pulling {reference} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(())
        }
    }
}

fn init(id: &str) -> anyhow::Result<()> {
    let (_, node, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("init", Some(id));
    let data = archy::names::app(id).data_dir(&node);
    for step in &app.manifest.init {
        let name = step.name.as_str();
        let creates =
            archy::init::creates(&node, &app.manifest, step).map_err(anyhow::Error::msg)?;
        let done = || {
            archy::init::is_done(&data, creates.as_str())
                .with_context(|| format!("init step `{name}`"))
        };
        if done()? {
            continue;
        }
        log.notice(&format!(
            "running init step `{name}`: {} is missing",
            creates.as_str()
        ));
        let args = archy::init::podman_args(&node, &app.manifest, &state, step);
        let out = podman::run_step(&args, step.keep_output).context("running podman")?;
        if !done()? {
            bail!(
                "init step `{name}` did not create {} ({}); its messages are in this unit's journal",
                data.join(creates.as_str()).display(),
                out.status
            );
        }
        if !out.status.success() {
            // what it made is there: its output may be the only copy of a seed, so keep it
            log.warning(&format!(
                "init step `{name}` created {} but then failed ({}): keeping its output",
                creates.as_str(),
                out.status
            ));
        }
        if step.keep_output {
            keep_output(&state, id, name, &out.stdout, &log)?;
        } else {
            log.notice(&format!("init step `{name}` done"));
        }
    }
    Ok(())
}

/// Keeps a step's output 0600 in the app's state; one kept before is moved aside, never lost.
fn keep_output(
    state: &std::path::Path,
    id: &str,
    step: &str,
    output: &[u8],
    log: &HookLog,
) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let kept = archy::init::keep_output(state, id, step, output, now)?;
    if let Some(aside) = kept.moved_aside {
        log.warning(&format!(
            "init step `{step}` ran again: its earlier output is kept in {}",
            aside.display()
        ));
    }
    log.notice(&format!(
        "init step `{step}` done; its output is kept in {} (0600): show it with \
         `archy-hook reveal {id} {step}`",
        kept.file.display()
    ));
    Ok(())
}

fn backup(id: &str, name: &str) -> anyhow::Result<()> {
    let (_, node, app) = valid_app(id)?;
    let Some(b) = app.manifest.backup.iter().find(|b| b.name.as_str() == name) else {
        bail!("app `{id}` declares no [[backup]] `{name}`");
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let log = HookLog::new("backup", Some(id));
    match archy::backup::copy_new_version(&node, &app.manifest, b, now)
        .map_err(|e| anyhow::anyhow!("backup `{name}`: {e}"))?
    {
        archy::backup::Outcome::Missing => log.notice(&format!("backup `{name}`: the app has not written it yet")),
        archy::backup::Outcome::Unchanged => log.notice(&format!("backup `{name}`: unchanged")),
        archy::backup::Outcome::Copied { version, bytes, pruned } => log.notice(&format!(
            "backup `{name}`: copied {bytes} bytes to {}; {pruned} older version(s) removed, the last {} kept",
            version.display(),
            b.keep
        )),
    }
    Ok(())
}

fn reveal(id: &str, step: &str, again: bool) -> anyhow::Result<()> {
    let (_, _, app) = valid_app(id)?;
    if !app
        .manifest
        .init
        .iter()
        .any(|s| s.name.as_str() == step && s.keep_output)
    {
        bail!("app `{id}` has no init step `{step}` that keeps its output");
    }
    let state = state()?;
    let file = archy::init::output_file(&state, id, step);
    let marker = archy::init::shown_marker(&state, id, step);
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bail!("not showing it: standard output is not a terminal (it is shown to a person only)");
    }
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "nothing kept yet: the step has not run ({} is missing)",
                file.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    if let (false, Ok(when)) = (again, std::fs::read_to_string(&marker)) {
        bail!(
            "already shown ({}); `archy-hook reveal {id} {step} --again` shows it once more",
            when.trim()
        );
    }
    println!("{}", text.trim_end());
    let now = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M:%S UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    archy::atomic::write(&marker, format!("shown at {now}\n").as_bytes(), 0o600)
        .with_context(|| format!("writing {}", marker.display()))?;
    HookLog::new("reveal", Some(id)).notice(&format!(
        "showed init step `{step}`'s output at the terminal"
    ));
    Ok(())
}

fn leftover(id: &str) -> anyhow::Result<()> {
    use archy::leftover::{decide, parse_inspect, Action, HostProcesses};
    if !archy::text::is_id(id) {
        bail!("`{id}` is not an app id");
    }
    let name = archy::names::app(id).container();
    let Some(line) = podman::container_state(&name) else {
        return Ok(()); // no such container: nothing left over
    };
    let seen = parse_inspect(&line)
        .with_context(|| format!("unexpected output of podman inspect {name}: {line:?}"))?;
    if decide(&seen, &HostProcesses) == Action::Nothing {
        return Ok(());
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .context("XDG_RUNTIME_DIR is not set: podman's runtime dir is unknown")?;
    archy::leftover::write_exit_file(&runtime, &seen.id)
        .context("writing the exit file conmon never wrote")?;
    podman::remove_container_checked(&seen.id)?;
    HookLog::new("leftover", Some(id)).notice(&format!(
        "removed the leftover container {name} ({}): podman recorded it as paused, but its \
         process and conmon were gone, and podman can neither stop nor replace such a container",
        &seen.id[..12]
    ));
    Ok(())
}

fn preflight(id: &str) -> anyhow::Result<()> {
    let (_, node, app) = valid_app(id)?;
    let reserve = app
        .manifest
        .service
        .disk_reserve
        .unwrap_or(node.disk_reserve);
    let dir = archy::names::app(id).data_dir(&node);
    let free = archy::disk::available(&dir)
        .with_context(|| format!("checking free space at {}", dir.display()))?;
    if free < reserve.0 {
        bail!(
            "not starting: {} free under {}, below the disk reserve of {reserve}; free some space, \
             then `systemctl --user start {}`",
            ByteSize(free),
            dir.display(),
            archy::names::app(id).service()
        );
    }
    Ok(())
}

/// The kind of secret `name` and the valid apps declaring it.
fn secret_users(
    name: &str,
) -> anyhow::Result<(
    Paths,
    NodeSettings,
    archy::manifest::SecretKind,
    Vec<ValidApp>,
)> {
    let paths = Paths::from_env();
    let (node, catalog) = generate::load_catalog(&paths);
    let node = node?;
    let users: Vec<ValidApp> = catalog
        .valid
        .into_values()
        .filter(|a| a.manifest.secrets.keys().any(|k| k.as_str() == name))
        .collect();
    let Some(kind) = users
        .first()
        .and_then(|a| a.manifest.secrets.iter().find(|(k, _)| k.as_str() == name))
        .map(|(_, d)| d.kind)
    else {
        bail!("no app declares a secret named `{name}`");
    };
    Ok((paths, node, kind, users))
}

fn rotate(name: &str) -> anyhow::Result<()> {
    let (_, _, kind, users) = secret_users(name)?;
    let decls = users.iter().filter_map(|a| {
        let (_, d) = a
            .manifest
            .secrets
            .iter()
            .find(|(k, _)| k.as_str() == name)?;
        Some((a.manifest.id(), *d))
    });
    if let Err(why) = archy::secrets::may_rotate(name, decls) {
        bail!("{why}");
    }
    let state = state()?;
    archy::secrets::rotate(&state, name, kind)
        .with_context(|| format!("rotating secret `{name}`"))?;
    let ids: Vec<&str> = users.iter().map(|a| a.manifest.id()).collect();
    HookLog::new("rotate", None).notice(&format!(
        "rotated secret `{name}`; archy-secret@{name}.path applies it to: {}",
        ids.join(" ")
    ));
    Ok(())
}

fn secret_changed(name: &str) -> anyhow::Result<()> {
    let state = state()?;
    let log = HookLog::new("secret-changed", None);
    // archy-secret@<name>.path does not watch while this runs, so this only queues the restarts
    // (--no-block) and is done in milliseconds: a rotation while the apps restart is then seen by
    // the path unit and applied by the next run. Waiting for the restarts instead missed it: the
    // apps that had started by then kept the old password, the others took the new one, and a
    // health-gated start that cannot reach bitcoind never ends (until its start timeout)
    use archy::secrets::{change_step, ChangeStep, APPLY_ROUNDS};
    for rounds in 0.. {
        let secret = archy::secrets::read(&state, name)?;
        let applied = secret
            .as_ref()
            .map(|s| archy::secrets::is_applied(&state, name, s));
        match change_step(applied, rounds) {
            ChangeStep::Done => return Ok(()),
            ChangeStep::GiveUp => bail!(
                "secret `{name}` kept changing while it was being applied ({APPLY_ROUNDS} times); \
                 rotate it again once"
            ),
            ChangeStep::Apply => {}
        }
        let secret = secret.expect("an applied value exists");
        let (paths, node, _, users) = secret_users(name)?;
        for app in users.iter().filter(|a| !a.manifest.config.is_empty()) {
            archy::config::render(&paths, &state, &app.manifest, &node)
                .with_context(|| format!("re-rendering {}", app.manifest.id()))?;
        }
        let units: Vec<String> = users
            .iter()
            .map(|a| archy::names::app(a.manifest.id()).service())
            .collect();
        // try-restart: running units restart in one transaction (ordered by their After=);
        // stopped ones stay stopped and read the new secret when they start
        archy::systemctl::run_no_block("try-restart", &units)?;
        archy::secrets::mark_applied(&state, name, &secret)?;
        log.notice(&format!(
            "applied secret `{name}`: restarting {}",
            units.join(" ")
        ));
    }
    unreachable!("the rounds end in Done or GiveUp")
}

fn status(json: bool) -> anyhow::Result<()> {
    use archy::status::{asks_health, asks_network, unit_facts, ManifestState};
    let paths = Paths::from_env();
    let (node, catalog) = generate::load_catalog(&paths);
    let ids: Vec<&str> = catalog.ids().into_iter().collect();
    let units: Vec<String> = ids
        .iter()
        .map(|id| archy::names::app(id).service())
        .collect();
    let shown = archy::systemctl::show(&units, archy::status::UNIT_PROPERTIES)?;
    let jobs = archy::systemctl::jobs().unwrap_or_default();
    let mut rows = Vec::new();
    for (id, unit) in ids.iter().zip(&units) {
        let names = archy::names::app(id);
        let u = unit_facts(&shown, &jobs, unit);
        let valid = catalog.valid.get(*id);
        let health = asks_health(&u)
            .then(|| podman::health_facts(&names.container()))
            .flatten()
            .unwrap_or_default();
        let deps: Vec<(String, String)> = valid
            .map(|a| a.links.after.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|d| {
                let dep = archy::names::app(d).service();
                let state = archy::status::dependency_state(&unit_facts(&shown, &jobs, &dep));
                (dep, state)
            })
            .collect();
        let (manifest, error) = archy::status::manifest_state(
            catalog.invalid.get(*id),
            valid.and_then(|a| a.stale.as_ref()),
        );
        let error = match manifest {
            ManifestState::Ok => archy::systemctl::last_error(unit),
            _ => error,
        };
        let mut row = archy::status::row(id, &u, &health, &deps, manifest, error);
        if asks_network(&u) {
            row.network =
                podman::label(&names.container(), archy::render::NETWORK_LABEL).unwrap_or_default();
        }
        rows.push(row);
    }
    if json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        let network = node
            .as_ref()
            .map_or("(node.toml is invalid)", |n| n.network.as_str());
        print!("{}", archy::status::table(network, &rows));
    }
    Ok(())
}

fn reconcile() -> anyhow::Result<()> {
    let log = HookLog::new("reconcile", None);
    let start = std::time::Instant::now();
    let s = archy::reconcile::reconcile(&Paths::from_env(), &log)?;
    log.info(&format!(
        "reconciled in {} pass(es), {} ms: stopped [{}], restarted [{}], migrated {}",
        s.passes,
        start.elapsed().as_millis(),
        s.stopped.iter().cloned().collect::<Vec<_>>().join(" "),
        s.restarted.iter().cloned().collect::<Vec<_>>().join(" "),
        s.migrated.len()
    ));
    Ok(())
}

fn post_install() -> anyhow::Result<()> {
    use archy::systemctl::{run_as, Reached};
    let log = HookLog::new("post-install", None);
    let user = archy::service_user::node_user(&Paths::from_env())?;
    // the package may have brought new versions of archy's own units, and a unit the manager
    // still holds from before they were installed (a failed run, say) stays "not found" until a
    // reload: without one, this start would fail or run the old definition
    run_as(&user, &["daemon-reload"])
        .with_context(|| format!("reloading {}'s manager", user.name))?;
    let reached = run_as(&user, &["start", "archy-reconcile.service"]).with_context(|| {
        format!(
            "archy-reconcile.service failed in {}'s manager (see journalctl --user -u archy-reconcile)",
            user.name
        )
    })?;
    match reached {
        Reached::NotRunning => log.notice(&format!(
            "the systemd user manager of {} is not running: manifests apply at its next start",
            user.name
        )),
        Reached::Ran => log.info(&format!("applied manifests in {}'s manager", user.name)),
    }
    Ok(())
}

fn pre_remove(id: &str) -> anyhow::Result<()> {
    use archy::systemctl::{run_as, Reached};
    if !archy::text::is_id(id) {
        bail!("`{id}` is not an app id");
    }
    let log = HookLog::new("pre-remove", Some(id));
    let user = archy::service_user::node_user(&Paths::from_env())?;
    let unit = archy::names::app(id).service();
    match run_as(&user, &["stop", &unit]).with_context(|| format!("stopping {unit}"))? {
        Reached::NotRunning => log.notice(&format!(
            "the systemd user manager of {} is not running: nothing to stop",
            user.name
        )),
        Reached::Ran => log.info(&format!("stopped {unit}; its data is kept")),
    }
    Ok(())
}
