//! The node's app set as a whole: resolving dependencies and provided names, and the checks that
//! need more than one manifest (unknown dependencies, cycles, host ports, reserved ids). An app that
//! fails any check becomes `Invalid`; the others are resolved as if it were fine, so one broken
//! manifest never takes the rest down.

use crate::error::InputError;
use crate::graph::{find_cycles, Edges};
use crate::load::Loaded;
use crate::manifest::{Manifest, Protocol, SecretKind};
use crate::node::NodeSettings;
use crate::paths::Paths;
use crate::text::is_id;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Ids that would collide with archy's own units (`archy-<id>.service`, `archy-network.service`
/// from the `archy` network, `archy-reconcile.*`, ...).
pub const RESERVED_IDS: &[&str] = &[
    "network",
    "reconcile",
    "hook",
    "generator",
    "target",
    "rotate",
    "secrets",
    "render",
    "status",
];

#[derive(Debug, Clone)]
pub struct ValidApp {
    pub manifest: Manifest,
    pub source: PathBuf,
    /// App ids to start with this one (`Wants=`).
    pub wants: Vec<String>,
    /// App ids to start after when both start (`After=`).
    pub after: Vec<String>,
    /// App ids that must not run beside this one (`Conflicts=`).
    pub conflicts: Vec<String>,
    /// Whether `archy.target` wants this app.
    pub in_target: bool,
    /// Set when this is the last-known-good definition, kept because the manifest is invalid now.
    pub stale: Option<InputError>,
}

#[derive(Debug, Clone)]
pub struct InvalidApp {
    /// The file name's stem: the unit is `archy-<stem>.service` when it is a valid id.
    pub stem: String,
    pub source: PathBuf,
    pub errors: Vec<InputError>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub valid: BTreeMap<String, ValidApp>,
    pub invalid: BTreeMap<String, InvalidApp>,
}

impl Catalog {
    /// Every app id, valid or not, in order.
    pub fn ids(&self) -> BTreeSet<&str> {
        self.valid
            .keys()
            .chain(self.invalid.keys())
            .map(String::as_str)
            .collect()
    }
}

/// Checks `loaded` as a set against the node settings. `paths` is used to check that declared
/// templates exist.
pub fn resolve(node: &NodeSettings, paths: &Paths, loaded: Vec<Loaded>) -> Catalog {
    let mut errors: BTreeMap<String, Vec<InputError>> = BTreeMap::new();
    let mut manifests: BTreeMap<String, (Manifest, PathBuf)> = BTreeMap::new();
    let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut stale: BTreeMap<String, InputError> = BTreeMap::new();
    for l in loaded {
        sources.insert(l.stem.clone(), l.path.clone());
        if let Some(e) = l.stale {
            stale.insert(l.stem.clone(), e);
        }
        match l.manifest {
            Ok(m) => {
                let own = check_one(&m, &l.path, paths);
                if !own.is_empty() {
                    errors.insert(l.stem.clone(), own);
                }
                manifests.insert(l.stem, (m, l.path));
            }
            Err(e) => {
                errors.insert(l.stem, vec![e]);
            }
        }
    }
    let all_ids: BTreeSet<String> = sources.keys().cloned().collect();

    // provided names, from manifests that parsed
    let mut providers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, (m, path)) in &manifests {
        for name in &m.app.provides {
            if all_ids.contains(name.as_str()) {
                push_err(
                    &mut errors,
                    id,
                    path,
                    "[app] provides",
                    format!("`{name}` is the id of an app"),
                );
            } else {
                providers.entry(name.as_str()).or_default().push(id);
            }
        }
    }
    let chosen: BTreeMap<&str, &str> = providers
        .iter()
        .filter_map(|(name, ps)| Some((*name, node.choose_provider(name, ps)?)))
        .collect();

    // secrets declared with two kinds
    let mut secret_kinds: BTreeMap<&str, (SecretKind, &str)> = BTreeMap::new();
    for (id, (m, path)) in &manifests {
        for (name, decl) in &m.secrets {
            let kind = &decl.kind;
            match secret_kinds.get(name.as_str()) {
                Some((k, other)) if k != kind => push_err(
                    &mut errors,
                    id,
                    path,
                    format!("[secrets] {name}"),
                    format!("declared with another kind by `{other}`"),
                ),
                Some(_) => {}
                None => {
                    secret_kinds.insert(name.as_str(), (*kind, id));
                }
            }
        }
    }

    // dependencies
    let resolve_name = |name: &str| -> Option<Vec<String>> {
        if all_ids.contains(name) {
            return Some(vec![name.to_string()]);
        }
        if let Some(ps) = providers.get(name) {
            return Some(ps.iter().map(|p| p.to_string()).collect());
        }
        // pinned in node.toml to an app that exists but does not parse: keep the edge
        node.providers
            .iter()
            .find(|(k, v)| k.as_str() == name && all_ids.contains(v.as_str()))
            .map(|(_, v)| vec![v.to_string()])
    };
    let mut edges: Edges = BTreeMap::new();
    for (id, (m, path)) in &manifests {
        let mut wants = Vec::new();
        let mut after = Vec::new();
        let required = m
            .dependencies
            .requires
            .iter()
            .chain(m.app.companion_for.iter());
        for (key, names, pulls) in [
            (
                "[dependencies] requires",
                required.collect::<Vec<_>>(),
                true,
            ),
            (
                "[dependencies] after",
                m.dependencies.after.iter().collect(),
                false,
            ),
        ] {
            for name in names {
                let key = if m.app.companion_for.as_ref() == Some(name) && pulls {
                    "[app] companion_for"
                } else {
                    key
                };
                match resolve_name(name.as_str()) {
                    // ordering with an app that is not installed (an optional one) is no ordering
                    None if !pulls => {}
                    None => push_err(
                        &mut errors,
                        id,
                        path,
                        key,
                        format!("unknown app or provided name `{name}`"),
                    ),
                    Some(targets) if targets.iter().any(|t| t == id) => push_err(
                        &mut errors,
                        id,
                        path,
                        key,
                        format!("`{name}` is this app itself"),
                    ),
                    Some(targets) => {
                        if pulls {
                            let pick = chosen.get(name.as_str()).map(|c| c.to_string());
                            wants.push(pick.unwrap_or_else(|| targets[0].clone()));
                        }
                        after.extend(targets);
                    }
                }
            }
        }
        let mut conflicts: Vec<String> = m
            .app
            .provides
            .iter()
            .flat_map(|n| providers.get(n.as_str()).into_iter().flatten())
            .filter(|p| *p != id)
            .map(|p| p.to_string())
            .collect();
        for name in &m.app.conflicts {
            conflicts.extend(
                resolve_name(name.as_str())
                    .into_iter()
                    .flatten()
                    .filter(|t| t != id),
            );
        }
        for list in [&mut wants, &mut after, &mut conflicts] {
            list.sort();
            list.dedup();
        }
        edges.insert(id.clone(), (wants, after, conflicts));
    }
    // `Conflicts=` is symmetric in effect; write it on both sides so either unit shows it
    let pairs: Vec<(String, String)> = edges
        .iter()
        .flat_map(|(id, (_, _, c))| c.iter().map(move |o| (o.clone(), id.clone())))
        .collect();
    for (a, b) in pairs {
        if let Some((_, _, c)) = edges.get_mut(&a) {
            if !c.contains(&b) {
                c.push(b);
                c.sort();
            }
        }
    }

    for cycle in find_cycles(&edges) {
        let text = cycle.join(" → ");
        let id = &cycle[0];
        push_err(
            &mut errors,
            id,
            &manifests[id].1,
            "[dependencies]",
            format!("dependency cycle: {text}"),
        );
    }

    check_shared_volumes(&manifests, &edges, &mut errors);
    check_ports(&manifests, &edges, &mut errors);
    check_aliases(&manifests, &edges, &mut errors);
    let unchosen = unchosen_providers(&chosen, &providers);

    let mut catalog = Catalog::default();
    for (id, errs) in &errors {
        catalog.invalid.insert(
            id.clone(),
            InvalidApp {
                stem: id.clone(),
                source: sources[id].clone(),
                errors: errs.clone(),
            },
        );
    }
    for (id, (manifest, source)) in manifests {
        if errors.contains_key(&id) {
            continue;
        }
        let (wants, after, conflicts) = edges.remove(&id).unwrap_or_default();
        let stale = stale.remove(&id);
        catalog.valid.insert(
            id,
            ValidApp {
                manifest,
                source,
                wants,
                after,
                conflicts,
                in_target: false,
                stale,
            },
        );
    }
    mark_target(&mut catalog, &unchosen);
    catalog
}

/// Checks that need only the one manifest, beyond what its types enforce.
fn check_one(m: &Manifest, path: &std::path::Path, paths: &Paths) -> Vec<InputError> {
    let mut errs = Vec::new();
    let mut err = |key: &str, msg: String| errs.push(InputError::at_key(path, key, msg));
    let id = m.id();
    if RESERVED_IDS.contains(&id) {
        err(
            "[app] id",
            format!("`{id}` is reserved for archy's own units"),
        );
    }
    if m.app
        .companion_for
        .as_ref()
        .is_some_and(|c| c.as_str() == id)
    {
        err(
            "[app] companion_for",
            "an app cannot be its own companion".into(),
        );
    }
    let c = &m.container;
    if c.network == crate::manifest::NetworkMode::Host {
        if !c.ports.is_empty() {
            err(
                "[container] ports",
                "ports are not published with network = \"host\"".into(),
            );
        }
        if !c.network_aliases.is_empty() {
            err(
                "[container] network_aliases",
                "aliases need the archy network".into(),
            );
        }
    }
    if c.userns.is_some() && c.user.as_ref().is_some_and(|u| u.ids().0 != 0) {
        err(
            "[container] userns",
            "set either `user` (archy then maps the service user to it) or `userns`, not both"
                .into(),
        );
    }
    let mut seen = BTreeSet::new();
    for p in &c.ports {
        if p.host == 0 || p.container == 0 {
            err("[container] ports", "port 0 is not a port".into());
        }
        if !seen.insert((p.host, p.protocol)) {
            err(
                "[container] ports",
                format!("host port {}/{} listed twice", p.host, p.protocol.as_str()),
            );
        }
    }
    // an app reads exactly the secrets it declares: never the whole directory, never another's
    for v in c
        .volumes
        .iter()
        .filter(|v| v.from == crate::manifest::VolumeSource::Secrets)
    {
        let name = v
            .subpath
            .as_ref()
            .and_then(|s| s.as_str().split('/').find(|p| !p.is_empty() && *p != "."));
        match name {
            None => err(
                "[container] volumes",
                format!(
                    "`{}`: a secrets volume needs `subpath` naming one of this app's [secrets]",
                    v.target
                ),
            ),
            Some(n) if !m.secrets.keys().any(|k| k.as_str() == n) => err(
                "[container] volumes",
                format!("`{}`: secret `{n}` is not declared in [secrets]", v.target),
            ),
            Some(_) => {}
        }
    }
    let mut targets = BTreeSet::new();
    let mounts = c
        .volumes
        .iter()
        .map(|v| v.target.as_str())
        .chain(m.config.iter().map(|f| f.target.as_str()));
    for t in mounts.chain(c.tmpfs.iter().map(|t| t.as_str())) {
        // `/data`, `/data/`, `//data` and `/data/.` are one mount point to podman
        let clean: Vec<&str> = t
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if !targets.insert(clean) {
            err("[container] volumes", format!("`{t}` is mounted twice"));
        }
    }
    // one volume's directory inside another's (of the same source and owner): the container can
    // plant a link where the inner one is, redirecting its creation and its bind mount
    let dir_of = |v: &crate::manifest::Volume| {
        let sub = v.subpath.as_ref().map_or("", |s| s.as_str());
        let parts: Vec<String> = sub
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .map(str::to_string)
            .collect();
        (v.from, v.owner(id).to_string(), parts)
    };
    for (i, outer) in c.volumes.iter().enumerate() {
        let (from, owner, o) = dir_of(outer);
        for inner in &c.volumes[i + 1..] {
            let (from2, owner2, n) = dir_of(inner);
            if from == from2 && owner == owner2 && (n.starts_with(&o) || o.starts_with(&n)) {
                err(
                    "[container] volumes",
                    format!(
                        "`{}` and `{}` mount one directory or one inside the other: mount the \
                         outer one only, or directories side by side",
                        outer.target, inner.target
                    ),
                );
            }
        }
    }
    // quadlet ends `Exec=` at an empty word, dropping it and every argument after it, and copies a
    // lone `;` unquoted into `ExecStart=`, where systemd takes it for a command separator
    for (i, arg) in c.command.iter().flatten().enumerate() {
        if let Some(why) = lost_word(arg.as_str()) {
            err("[container] command", format!("item {i} {why}"));
        }
    }
    if let Some(h) = &m.health {
        if h.cmd.as_str().trim().is_empty() {
            err("[health] cmd", "is empty".into());
        } else if let Some(why) = lost_word(h.cmd.as_str()) {
            err("[health] cmd", why.into());
        }
        if h.retries == 0 {
            err("[health] retries", "must be at least 1".into());
        }
        if h.interval.as_millis() == 0 {
            err("[health] interval", "must be more than 0s".into());
        }
    }
    let s = &m.service;
    if s.restart_max_delay < s.restart_delay {
        err(
            "[service] restart_max_delay",
            "is shorter than restart_delay".into(),
        );
    }
    let mut steps = BTreeSet::new();
    for step in &m.init {
        if !steps.insert(step.name.as_str()) {
            err("[[init]] name", format!("`{}` is listed twice", step.name));
        }
        if step.command.is_empty() {
            err(
                "[[init]] command",
                format!("step `{}`: is empty", step.name),
            );
        }
        for (i, arg) in step.command.iter().enumerate() {
            if let Some(why) = lost_word(arg.as_str()) {
                err(
                    "[[init]] command",
                    format!("step `{}`: item {i} {why}", step.name),
                );
            }
        }
        if step
            .creates
            .as_str()
            .split('/')
            .all(|p| p.is_empty() || p == ".")
        {
            err(
                "[[init]] creates",
                format!("step `{}`: names the data dir itself", step.name),
            );
        }
    }
    let mut backups = BTreeSet::new();
    for b in &m.backup {
        if !backups.insert(b.name.as_str()) {
            err("[[backup]] name", format!("`{}` is listed twice", b.name));
        }
        if !(1..=1000).contains(&b.keep) {
            err(
                "[[backup]] keep",
                format!("backup `{}`: must be 1 to 1000, not {}", b.name, b.keep),
            );
        }
        if let Err(e) = crate::backup::source(&Default::default(), m, b) {
            err("[[backup]] path", e);
        }
        if !crate::init::has_data(m) {
            err(
                "[[backup]] path",
                format!(
                    "backup `{}`: the app mounts no data volume of its own",
                    b.name
                ),
            );
        }
    }
    if m.id() == crate::backup::DEFAULT_DIR {
        err(
            "[app] id",
            format!(
                "`{}` is reserved: node.toml's default backup_dir is <data_dir>/{}",
                m.id(),
                crate::backup::DEFAULT_DIR
            ),
        );
    }
    let mut templates = BTreeSet::new();
    for f in &m.config {
        if !templates.insert(f.template.as_str()) {
            err(
                "[[config]] template",
                format!("`{}` is listed twice", f.template),
            );
        }
        let t = paths.template(id, f.template.as_str());
        if !t.is_file() {
            err(
                "[[config]] template",
                format!("`{}` not found at {}", f.template, t.display()),
            );
        }
    }
    errs
}

/// Why `word` cannot reach the container as one argument through quadlet and `ExecStart=`.
fn lost_word(word: &str) -> Option<&'static str> {
    match word {
        "" => Some("is empty: quadlet would drop it and every argument after it"),
        ";" => Some("is a lone `;`, which systemd would take for a command separator"),
        _ => None,
    }
}

fn push_err(
    errors: &mut BTreeMap<String, Vec<InputError>>,
    id: &str,
    path: &std::path::Path,
    key: impl Into<String>,
    msg: String,
) {
    errors
        .entry(id.to_string())
        .or_default()
        .push(InputError::at_key(path, key, msg));
}

/// Two apps that can run together must not answer to one name on the archy network, and no alias
/// may be another app's container name: a dependent would reach either, and send its credentials
/// to the wrong one. Container names are taken first; among aliases the first by id keeps it.
fn check_aliases(
    manifests: &BTreeMap<String, (Manifest, PathBuf)>,
    edges: &Edges,
    errors: &mut BTreeMap<String, Vec<InputError>>,
) {
    let mut owners: BTreeMap<String, Vec<&str>> = manifests
        .keys()
        .map(|id| (format!("archy-{id}"), vec![id.as_str()]))
        .collect();
    for (id, (m, path)) in manifests {
        let conflicts = edges.get(id).map(|e| &e.2);
        for alias in &m.container.network_aliases {
            let holders = owners.entry(alias.to_string()).or_default();
            let clash = holders.iter().find(|h| {
                **h != id.as_str() && !conflicts.is_some_and(|c| c.iter().any(|x| x == *h))
            });
            if let Some(other) = clash {
                push_err(
                    errors,
                    id,
                    path,
                    "[container] network_aliases",
                    format!("`{alias}` is already a name of `{other}` on the archy network"),
                );
            } else {
                holders.push(id);
            }
        }
    }
}

/// A volume of another app's data: only from an app this one requires (by id), only below a
/// directory that app shares, only with `from = "data"`.
fn check_shared_volumes(
    manifests: &BTreeMap<String, (Manifest, PathBuf)>,
    edges: &Edges,
    errors: &mut BTreeMap<String, Vec<InputError>>,
) {
    for (id, (m, path)) in manifests {
        for v in &m.container.volumes {
            let Some(owner) = &v.app else { continue };
            let key = "[container] volumes";
            let at = format!("`{}`", v.target);
            if v.from != crate::manifest::VolumeSource::Data {
                push_err(
                    errors,
                    id,
                    path,
                    key,
                    format!("{at}: `app` needs from = \"data\""),
                );
                continue;
            }
            let required = edges
                .get(id)
                .is_some_and(|(wants, _, _)| wants.iter().any(|w| w == owner.as_str()));
            if !required {
                push_err(
                    errors,
                    id,
                    path,
                    key,
                    format!(
                        "{at}: `{owner}` is not an app this one requires ([dependencies] requires)"
                    ),
                );
                continue;
            }
            let Some((om, _)) = manifests.get(owner.as_str()) else {
                continue;
            };
            let parts = |p: &str| -> Vec<String> {
                p.split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_string)
                    .collect()
            };
            let wanted = parts(v.subpath.as_ref().map_or("", |s| s.as_str()));
            let shared = om
                .app
                .shares
                .iter()
                .map(|s| parts(s.as_str()))
                .any(|s| !s.is_empty() && wanted.starts_with(&s));
            if !shared {
                push_err(
                    errors,
                    id,
                    path,
                    key,
                    format!(
                        "{at}: `{}` is not below a directory `{owner}` shares ([app] shares)",
                        wanted.join("/")
                    ),
                );
            }
        }
    }
}

/// Two apps that can run together must not publish the same host port: the first by id keeps
/// it, the later one is refused, naming the first.
fn check_ports(
    manifests: &BTreeMap<String, (Manifest, PathBuf)>,
    edges: &Edges,
    errors: &mut BTreeMap<String, Vec<InputError>>,
) {
    let mut owners: BTreeMap<(u16, Protocol), Vec<&str>> = BTreeMap::new();
    for (id, (m, path)) in manifests {
        let conflicts = edges.get(id).map(|e| &e.2);
        for p in &m.container.ports {
            let holders = owners.entry((p.host, p.protocol)).or_default();
            let clash = holders
                .iter()
                .find(|h| !conflicts.is_some_and(|c| c.iter().any(|x| x == *h)));
            if let Some(other) = clash {
                push_err(
                    errors,
                    id,
                    path,
                    "[container] ports",
                    format!(
                        "host port {}/{} is already published by `{other}`",
                        p.host,
                        p.protocol.as_str()
                    ),
                );
            } else {
                holders.push(id);
            }
        }
    }
}

/// `archy.target` wants every autostart app except providers the node did not choose, and except
/// apps whose wanted dependencies are themselves left out (a companion of the unchosen provider).
/// Invalid apps are wanted, so that their failure shows.
fn mark_target(catalog: &mut Catalog, unchosen: &BTreeSet<String>) {
    let mut out: BTreeSet<String> = catalog
        .valid
        .iter()
        .filter(|(id, a)| !a.manifest.app.autostart || unchosen.contains(*id))
        .map(|(id, _)| id.clone())
        .collect();
    loop {
        let more: Vec<String> = catalog
            .valid
            .iter()
            .filter(|(id, a)| !out.contains(*id) && a.wants.iter().any(|w| out.contains(w)))
            .map(|(id, _)| id.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        out.extend(more);
    }
    for (id, app) in catalog.valid.iter_mut() {
        app.in_target = !out.contains(id);
    }
}

/// Providers of a shared name that the node did not choose.
fn unchosen_providers(
    chosen: &BTreeMap<&str, &str>,
    providers: &BTreeMap<&str, Vec<&str>>,
) -> BTreeSet<String> {
    providers
        .iter()
        .flat_map(|(name, ps)| ps.iter().filter(move |p| chosen.get(name) != Some(*p)))
        .map(|p| p.to_string())
        .collect()
}

/// The unit name for an app id, if the stem can be one.
pub fn unit_name(stem: &str) -> Option<String> {
    is_id(stem).then(|| format!("archy-{stem}.service"))
}
