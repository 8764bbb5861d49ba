//! Pure rendering: from a resolved catalog to the text of every file the generator writes. No I/O
//! happens here, so fixture and hostile-input tests can check every byte.

use crate::catalog::{Catalog, InvalidApp, ValidApp};
use crate::escape;
use crate::manifest::{Manifest, NetworkMode, VolumeSource};
use crate::names;
use crate::node::NodeSettings;
use crate::unit::{Section, UnitFile, UnsafeValue};
use std::path::Path;

pub const TARGET: &str = "archy.target";
pub const NETWORK_FILE: &str = "archy.network";
/// The container label holding a hash of the app's config templates.
pub const TEMPLATES_LABEL: &str = "archy.templates";
/// The container label that names the node's bitcoin network the app runs on.
pub const NETWORK_LABEL: &str = "archy.network";

/// Settings of the rendering that do not come from manifests.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Passed on to hooks as `ARCHY_ROOT`, so that a test tree's units read the same tree.
    pub archy_root: Option<String>,
    /// The hook binary units run.
    pub hook: String,
}

/// Everything the generator writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Quadlet sources (`.container`, `.network`), converted by quadlet into services.
    pub sources: Vec<(String, String)>,
    /// Units written directly into the generator's output dir (`archy.target`, failing units).
    pub units: Vec<(String, String)>,
    /// App ids `archy.target` wants.
    pub target_wants: Vec<String>,
    /// Problems to log, one line each.
    pub problems: Vec<String>,
}

pub fn render_all(node: &NodeSettings, catalog: &Catalog, ctx: &Context) -> Rendered {
    let mut out = Rendered::default();
    // a broken node.toml is an error of every app: say it once (a set: thousands of invalid
    // apps must not cost the square of their number)
    let mut said = std::collections::HashSet::new();
    for e in catalog.invalid.values().flat_map(|a| &a.errors) {
        let line = e.to_string();
        if said.insert(line.clone()) {
            out.problems.push(line);
        }
    }
    let network = network_file(node).to_text().expect("validated addresses");
    out.sources.push((NETWORK_FILE.to_string(), network));
    let files = render_containers(node, catalog, ctx);
    for ((id, app), file) in catalog.valid.iter().zip(files) {
        if let Some(e) = &app.stale {
            out.problems
                .push(format!("{e} (app `{id}` keeps its last good definition)"));
        }
        match file {
            Ok(text) => {
                out.sources.push((names::app(id).quadlet_source(), text));
                if app.in_target {
                    out.target_wants.push(id.clone());
                }
            }
            // cannot happen with validated input; if it does, the app fails visibly instead
            Err(e) => {
                out.problems.push(format!("{}: {e}", app.source.display()));
                push_failing(&mut out, &app.source, id, "invalid manifest", ctx);
            }
        }
    }
    for (stem, app) in &catalog.invalid {
        push_invalid(&mut out, app, stem, ctx);
    }
    out.target_wants.sort();
    // a watcher per secret the running apps use, so a rotation reaches them (units/archy-secret@)
    let secrets: std::collections::BTreeSet<&str> = catalog
        .valid
        .values()
        .filter(|a| a.in_target)
        .flat_map(|a| a.manifest.secrets.keys().map(|k| k.as_str()))
        .collect();
    let mut wants: Vec<String> = out
        .target_wants
        .iter()
        .map(|id| names::app(id).service())
        .collect();
    wants.extend(secrets.iter().map(|s| names::secret_watcher(s)));
    // a watcher per file an app asks archy to back up ([[backup]])
    for app in catalog.valid.values().filter(|a| a.in_target) {
        match crate::backup::units(node, &app.manifest, &app.source, &ctx.hook) {
            Ok(units) => {
                wants.extend(
                    units
                        .iter()
                        .map(|(n, _)| n.clone())
                        .filter(|n| n.ends_with(".path")),
                );
                out.units.extend(units);
            }
            Err(e) => out.problems.push(format!("{}: {e}", app.source.display())),
        }
    }
    // manifest changes are applied while the apps run (units/archy-reconcile.path)
    wants.push(names::RECONCILE_PATH.to_string());
    out.units.push((TARGET.to_string(), target_file(&wants)));
    // file names and parser messages (an unknown key is quoted as written) may hold line breaks
    for p in &mut out.problems {
        *p = crate::text::one_line(p);
    }
    out
}

/// Every valid app's `.container`, in the catalog's order, rendered on all cores when there are
/// many: at a reload of a node with many apps this is half the generator's own time.
fn render_containers(
    node: &NodeSettings,
    catalog: &Catalog,
    ctx: &Context,
) -> Vec<Result<String, UnsafeValue>> {
    let apps: Vec<&ValidApp> = catalog.valid.values().collect();
    crate::parallel::map(&apps, |a| container_file(node, a, ctx))
}

fn push_invalid(out: &mut Rendered, app: &InvalidApp, stem: &str, ctx: &Context) {
    if crate::text::is_id(stem) {
        let why = if app.errors.iter().any(crate::networks::is_unsupported) {
            "not on this network"
        } else {
            "invalid manifest"
        };
        push_failing(out, &app.source, stem, why, ctx);
    } else {
        out.problems.push(format!(
            "{}: no unit: the file name `{stem}.toml` is not a valid app id ([a-z][a-z0-9-]*)",
            app.source.display()
        ));
    }
}

fn push_failing(out: &mut Rendered, source: &Path, id: &str, why: &str, ctx: &Context) {
    match failing_unit(source, id, why, ctx).to_text() {
        Ok(text) => {
            out.units.push((names::app(id).service(), text));
            out.target_wants.push(id.to_string());
        }
        Err(e) => out.problems.push(format!("{}: {e}", source.display())),
    }
}

fn header(u: &mut UnitFile, source: &Path) {
    u.comment(format!(
        "Automatically generated by archy-generator from {}",
        escape::description(&source.display().to_string())
    ));
    u.comment("Edit the manifest, not this file: it is rewritten at every daemon-reload.");
}

/// The `.container` for a valid app, with a digest of its definition as a label.
pub fn container_file(
    node: &NodeSettings,
    app: &ValidApp,
    ctx: &Context,
) -> Result<String, UnsafeValue> {
    // the digest covers the definition, not the header naming where the manifest lives: moving a
    // manifest, or falling back to its last good copy, must not restart a running app
    let mut unit = container_unit(node, app, ctx);
    let digest = crate::digest::of(&unit.to_text()?);
    crate::digest::insert(&mut unit, &digest);
    header(&mut unit, &app.source);
    unit.to_text()
}

fn container_unit(node: &NodeSettings, app: &ValidApp, ctx: &Context) -> UnitFile {
    let mut u = UnitFile::new();
    unit_section(u.section("Unit"), app);
    container_section(u.section("Container"), node, &app.manifest);
    if let Some(t) = &app.templates {
        // the templates are part of the definition: a changed one restarts the app
        u.section("Container")
            .set("Label", escape::assignment(TEMPLATES_LABEL, t));
    }
    service_section(u.section("Service"), &app.manifest, ctx);
    u
}

/// What the app is, and its links to other apps.
fn unit_section(unit: &mut Section, app: &ValidApp) {
    let m = &app.manifest;
    let id = m.id();
    let name = m.app.name.as_ref().map_or(id, |n| n.as_str());
    unit.set(
        "Description",
        format!("{} (archy app {id})", escape::description(name)),
    );
    unit.set("Documentation", "man:archy-app.toml(5)");
    for w in &app.links.wants {
        unit.set("Wants", names::app(w).service());
    }
    for a in &app.links.after {
        unit.set("After", names::app(a).service());
    }
    for c in &app.links.conflicts {
        unit.set("Conflicts", names::app(c).service());
    }
    unit.set("PartOf", TARGET);
    // restarts back off (RestartSteps=) instead of hitting a start limit that needs a human
    unit.set("StartLimitIntervalSec", "0");
}

/// The container: image, network, mounts, process, hardening, health, labels.
fn container_section(ct: &mut Section, node: &NodeSettings, m: &Manifest) {
    let id = m.id();
    ct.set("ContainerName", names::app(id).container());
    ct.set("Image", m.image.reference.as_str());
    // `archy-hook ensure-image` builds or pulls (from allowed registries only) before the start
    ct.set("Pull", "never");
    network(ct, &m.container);
    mounts(ct, node, m);
    process(ct, &m.container);
    if let Some(h) = &m.health {
        health(ct, h);
    }
    let s = &m.service;
    ct.set("StopTimeout", s.stop_timeout.whole_secs().to_string());
    ct.set("Label", escape::assignment("archy.app", id));
    // part of the digest: a network switch restarts every app, also those that only see the
    // network in their config templates
    ct.set(
        "Label",
        escape::assignment(NETWORK_LABEL, node.network.as_str()),
    );
}

/// The network it joins, its names there and the ports it publishes.
fn network(ct: &mut Section, c: &crate::manifest::Container) {
    match c.network {
        NetworkMode::Archy => {
            ct.set("Network", NETWORK_FILE);
            for alias in &c.network_aliases {
                ct.set("NetworkAlias", alias.as_str());
            }
        }
        NetworkMode::Host => {
            ct.set("Network", "host");
        }
    }
    for p in &c.ports {
        let addr = match p.address {
            Some(std::net::IpAddr::V6(a)) => format!("[{a}]:"),
            Some(a) => format!("{a}:"),
            None => String::new(),
        };
        ct.set(
            "PublishPort",
            format!("{addr}{}:{}/{}", p.host, p.container, p.protocol.as_str()),
        );
    }
}

/// Its volumes and rendered config files.
fn mounts(ct: &mut Section, node: &NodeSettings, m: &Manifest) {
    let id = m.id();
    let c = &m.container;
    for v in &c.volumes {
        let ro = v.is_read_only();
        ct.set(
            "Volume",
            format!(
                "{}:{}{}",
                names::app(id).unit_volume_source(node, v),
                v.target,
                if ro { ":ro" } else { "" }
            ),
        );
    }
    for f in &m.config {
        ct.set(
            "Volume",
            format!(
                "{}:{}:ro",
                names::app(id).unit_config_file(f.template.as_str()),
                f.target
            ),
        );
    }
    for t in &c.tmpfs {
        ct.set("Tmpfs", t.as_str());
    }
}

/// How its process runs: environment, command, user, and what it may not do.
fn process(ct: &mut Section, c: &crate::manifest::Container) {
    for (k, v) in &c.environment {
        ct.set("Environment", escape::assignment(k.as_str(), v.as_str()));
    }
    if let Some(entrypoint) = &c.entrypoint {
        // podman takes a JSON array; `[]` clears the image's entrypoint
        let items: Vec<&str> = entrypoint.iter().map(|t| t.as_str()).collect();
        let json = serde_json::to_string(&items).expect("strings serialise");
        ct.set("Entrypoint", escape::raw_exec(&json));
    }
    if let Some(cmd) = &c.command {
        ct.set("Exec", escape::words(cmd));
    }
    if let Some(user) = &c.user {
        let (uid, gid) = user.ids();
        ct.set("User", format!("{uid}:{gid}"));
        // rootless, only the service user can use what archy mounts (its 0700 data dir, 0600
        // secrets and configs): map it to the uid the app runs as. Container root is then a
        // subordinate id, and an app running as root needs no mapping (root is the service user)
        if uid != 0 {
            ct.set("UserNS", format!("keep-id:uid={uid},gid={gid}"));
        }
    }
    ct.set_opt("UserNS", c.userns.as_ref().map(|u| u.as_str().to_string()));
    if c.read_only {
        ct.set("ReadOnly", "true");
    }
    ct.set("DropCapability", "all");
    for cap in &c.add_capabilities {
        ct.set("AddCapability", cap.as_str().trim_start_matches("CAP_"));
    }
    ct.set("NoNewPrivileges", "true");
}

/// Health checks, and readiness once healthy.
fn health(ct: &mut Section, h: &crate::manifest::Health) {
    ct.set("HealthCmd", escape::raw_exec(h.cmd.as_str()));
    ct.set("HealthInterval", h.interval.podman());
    ct.set("HealthTimeout", h.timeout.podman());
    // podman counts HealthStartPeriod from the container's start, even after a passing
    // check: a bitcoind hanging within its hour would never be killed. Start-up checks end
    // at the first pass instead (as Docker's start period does); until then failures do
    // not count, and the unit's start timeout bounds the wait.
    ct.set("HealthStartupCmd", escape::raw_exec(h.cmd.as_str()));
    ct.set(
        "HealthStartupInterval",
        startup_interval(h.interval).podman(),
    );
    ct.set("HealthStartupTimeout", h.timeout.podman());
    ct.set("HealthStartupRetries", "0");
    ct.set("HealthRetries", h.retries.to_string());
    ct.set("HealthOnFailure", h.on_failure.as_str());
    // the unit turns active only once the container is healthy: After= means "after it works"
    ct.set("Notify", "healthy");
}

/// Restarts, timeouts, and the hooks that prepare each start.
fn service_section(sv: &mut Section, m: &Manifest, ctx: &Context) {
    let id = m.id();
    let c = &m.container;
    let s = &m.service;
    sv.set("Restart", s.restart.as_str());
    sv.set("RestartSec", s.restart_delay.systemd());
    sv.set("RestartSteps", "10");
    sv.set("RestartMaxDelaySec", s.restart_max_delay.systemd());
    // the unit is activating until healthy: it may take the longer of the two
    let start = m.health.as_ref().map_or(s.start_timeout, |h| {
        s.start_timeout.at_least(h.start_period)
    });
    sv.set("TimeoutStartSec", start.systemd());
    // podman's own stop timeout, plus time to clean the container up
    sv.set(
        "TimeoutStopSec",
        format!("{}s", s.stop_timeout.whole_secs() + 30),
    );
    if let Some(root) = &ctx.archy_root {
        sv.set("Environment", systemd_env("ARCHY_ROOT", root));
    }
    if c.volumes.iter().any(|v| v.from == VolumeSource::Data) {
        // a condition, not a start step: a full disk leaves the unit stopped, not crash-looping
        sv.set("ExecCondition", format!("{} preflight {id}", ctx.hook));
    }
    if c.volumes.iter().any(|v| v.from != VolumeSource::Secrets) {
        // not `mkdir -p`: a link a container planted in a volume must not redirect it
        sv.set("ExecStartPre", format!("{} volumes {id}", ctx.hook));
    }
    if !m.secrets.is_empty() {
        sv.set("ExecStartPre", format!("{} secrets {id}", ctx.hook));
    }
    if !m.config.is_empty() {
        sv.set("ExecStartPre", format!("{} render {id}", ctx.hook));
    }
    sv.set("ExecStartPre", format!("{} ensure-image {id}", ctx.hook));
    if !m.init.is_empty() {
        // after the image is there; each step is done once
        sv.set("ExecStartPre", format!("{} init {id}", ctx.hook));
    }
    // last before the start: a leftover of the app's container that podman can neither stop nor
    // replace (see archy::leftover) would fail `podman run --replace` at every restart
    sv.set("ExecStartPre", format!("{} leftover {id}", ctx.hook));
}

/// Start-up checks run often, so that a unit turns active soon after its app works; never less
/// often than the regular checks.
fn startup_interval(interval: crate::duration::Duration) -> crate::duration::Duration {
    interval.min(crate::duration::Duration::from_secs(5))
}

/// `Environment=` in a `[Service]` section, read by systemd itself: quoted, C-escaped, `%%`.
fn systemd_env(key: &str, value: &str) -> String {
    let mut s = String::from("\"");
    s.push_str(key);
    s.push('=');
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '%' => s.push_str("%%"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A fixed subnet: its gateway is aardvark-dns, which companions' nginx asks again for an app's
/// address after the app's container was recreated with a new one.
fn network_file(node: &NodeSettings) -> UnitFile {
    let mut u = UnitFile::new();
    u.comment("Automatically generated by archy-generator: the network apps share.");
    let unit = u.section("Unit");
    unit.set("Description", "archy app network");
    unit.set("StartLimitIntervalSec", "0");
    let n = u.section("Network");
    n.set("NetworkName", "archy");
    n.set("Subnet", node.subnet.to_string());
    n.set("Gateway", node.subnet.gateway().to_string());
    // every app Requires= the network: a failed `podman network create` at boot must be retried,
    // or all apps would stay down with result 'dependency', which their Restart= does not cover
    let sv = u.section("Service");
    sv.set("Restart", "on-failure");
    sv.set("RestartSec", "2s");
    u
}

/// A unit for an app that cannot run (`why`: its manifest is invalid, say): its start fails and
/// `archy-hook explain` puts the reason in its journal, so `systemctl --user status archy-<id>`
/// tells the operator why.
fn failing_unit(source: &Path, id: &str, why: &str, ctx: &Context) -> UnitFile {
    let mut u = UnitFile::new();
    header(&mut u, source);
    let unit = u.section("Unit");
    unit.set(
        "Description",
        format!("archy app {id} ({why}: see `archy-hook explain {id}`)"),
    );
    unit.set("Documentation", "man:archy-app.toml(5)");
    unit.set("PartOf", TARGET);
    let sv = u.section("Service");
    sv.set("Type", "oneshot");
    // `explain` reports the reason as the unit's status line
    sv.set("NotifyAccess", "main");
    sv.set("ExecStart", format!("{} explain {id}", ctx.hook));
    // it only reads manifests; a oneshot has no start timeout by default
    sv.set("TimeoutStartSec", "1min");
    if let Some(root) = &ctx.archy_root {
        sv.set("Environment", systemd_env("ARCHY_ROOT", root));
    }
    u
}

/// The unit for a valid app whose `.container` quadlet refused (`reason`, as quadlet said it): its
/// start fails and `archy-hook explain` reports the reason, as for an invalid manifest.
pub fn unconverted_unit(source: &Path, id: &str, reason: &str, ctx: &Context) -> Option<String> {
    let mut u = failing_unit(source, id, "quadlet could not convert it", ctx);
    let sv = u.section("Service");
    sv.set(
        "Environment",
        systemd_env(QUADLET_ERROR_ENV, &crate::text::one_line(reason)),
    );
    u.to_text().ok()
}

/// Carries quadlet's reason to `archy-hook explain` in an unconverted app's unit.
pub const QUADLET_ERROR_ENV: &str = "ARCHY_QUADLET_ERROR";

fn target_file(wants: &[String]) -> String {
    let mut u = UnitFile::new();
    u.comment("Automatically generated by archy-generator: the node's apps.");
    let unit = u.section("Unit");
    unit.set("Description", "archy: the node's apps");
    unit.set("Documentation", "man:archy-generator(8)");
    for w in wants {
        unit.set("Wants", w.as_str());
    }
    u.to_text().expect("ids are safe")
}
