//! The hooks people and archy's own units run about apps: `status`, `purge`, `reveal`, `backup`,
//! and the secrets' `rotate` and `secret-changed`.
use super::*;
pub(crate) fn purge(id: &str, yes: bool) -> anyhow::Result<()> {
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

pub(crate) fn backup(id: &str, name: &str) -> anyhow::Result<()> {
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

pub(crate) fn reveal(id: &str, step: &str, again: bool) -> anyhow::Result<()> {
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

/// The kind of secret `name` and the valid apps declaring it.
pub(crate) fn secret_users(
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

pub(crate) fn rotate(name: &str) -> anyhow::Result<()> {
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

pub(crate) fn secret_changed(name: &str) -> anyhow::Result<()> {
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
            archy::config::render_app(
                &paths,
                &state,
                &app.manifest,
                &node,
                app.rolled_back.as_deref(),
            )
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

pub(crate) fn status(json: bool) -> anyhow::Result<()> {
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
            valid
                .and_then(|a| a.rolled_back.as_ref())
                .map(|r| &r.failed),
        );
        let error = match manifest {
            ManifestState::Ok => archy::systemctl::last_error(unit),
            _ => error,
        };
        let mut row = archy::status::row(id, &u, &health, &deps, manifest, error);
        if let Some(app) = valid {
            row.version = app.manifest.image.reference.to_string();
            row.previous = previous_version(app);
        }
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

/// The image of the app's definition before its last update: the pending update's, the one a
/// rollback returned from, or the kept previous manifest's.
fn previous_version(app: &ValidApp) -> String {
    let Some(state) = state_dir() else {
        return String::new();
    };
    let records = archy::update::Records::of(&state, app.manifest.id());
    if let Some(p) = records.pending() {
        return p.from;
    }
    if let Some(r) = &app.rolled_back {
        return r.failed.to.clone();
    }
    std::fs::read_to_string(records.previous_manifest())
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("image")?.get("ref")?.as_str().map(str::to_string))
        .unwrap_or_default()
}
