//! The node's app set as a whole: resolving dependencies and provided names, and the checks that
//! need more than one manifest (unknown dependencies, cycles, host ports, reserved ids). An app that
//! fails any check becomes `Invalid`; the others are resolved as if it were fine, so one broken
//! manifest never takes the rest down.

use crate::error::InputError;
use crate::graph::{find_cycles, Cycle, Edges, Links};
use crate::load::Loaded;
use crate::manifest::{Manifest, Protocol, SecretKind};
use crate::node::NodeSettings;
use crate::paths::Paths;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Ids that would collide with a name archy owns, from this one list: its units
/// (`archy-<id>.service`, `archy-network.service` from the `archy` network, `archy-reconcile.*`,
/// ...), the directories beside the apps' own in its state dir (`<state>/<id>/` is the app's:
/// `secrets/`, `last-good/`), and the default backup dir below the data dir.
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
    "last-good",
    crate::backup::DEFAULT_DIR,
];

/// Infixes of the names archy derives from an app id for its own units and containers
/// (`archy-<id>-backup-<name>.path`, `archy-<id>-init-<step>`): an id holding one could be taken
/// for another app's.
pub const RESERVED_INFIXES: &[&str] = &[crate::names::BACKUP_INFIX, crate::names::INIT_INFIX];

/// Why `id` cannot be an app's id, if it cannot.
pub fn reserved(id: &str) -> Option<String> {
    if RESERVED_IDS.contains(&id) {
        return Some(format!(
            "`{id}` is reserved for archy's own units and state"
        ));
    }
    RESERVED_INFIXES
        .iter()
        .find(|i| id.contains(*i))
        .map(|i| format!("`{id}` holds `{i}`, which archy's own unit names for apps use"))
}

#[derive(Debug, Clone)]
pub struct ValidApp {
    pub manifest: Manifest,
    pub source: PathBuf,
    /// Its unit's links to other apps.
    pub links: Links,
    /// Whether `archy.target` wants this app.
    pub in_target: bool,
    /// Set when this is the last-known-good definition, kept because the manifest is invalid now.
    pub stale: Option<InputError>,
    /// Set when this is the previous definition, because the current one failed as an update.
    pub rolled_back: Option<Box<crate::update::RolledBack>>,
    /// A hash of its config templates' contents (`generate::load_catalog` fills it in): part of
    /// its definition, so a changed template restarts the app like a changed manifest.
    pub templates: Option<String>,
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

/// The most apps that may provide one name. Providers of a name all conflict with each other
/// (`Conflicts=` both ways), so their edges grow with the square of their number: the bound keeps a
/// reload linear in the number of apps. The apps over it (newcomers first) are refused.
pub const MAX_PROVIDERS: usize = 16;

/// What decides between apps beyond their manifests: the grants, and which apps are installed.
/// An installed app wins every collision with a newcomer (names, aliases, ports, provided names,
/// secrets, cycles): the newcomer is the one refused, and its manifest never changes another
/// app's unit.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub grants: crate::grants::Grants,
    /// Apps with a last-good definition (reconcile applied them before) or named in a vendor
    /// grants file (shipped as part of the node).
    pub installed: BTreeSet<String>,
}

impl Policy {
    fn installed(&self, id: &str) -> bool {
        self.installed.contains(id)
    }
}

/// Checks `loaded` as a set against the node settings and the policy. `paths` is used to check
/// that declared templates exist.
pub fn resolve(
    node: &NodeSettings,
    paths: &Paths,
    policy: &Policy,
    loaded: Vec<Loaded>,
) -> Catalog {
    let Parsed {
        manifests,
        sources,
        mut stale,
        mut rolled_back,
        mut errors,
    } = check_each(node, paths, policy, loaded);
    let all_ids: BTreeSet<String> = sources.keys().cloned().collect();
    // first come, first served: installed apps, then newcomers, each group by id
    let mut ranked: Vec<&str> = manifests.keys().map(String::as_str).collect();
    ranked.sort_by_key(|id| !policy.installed(id));

    let providers = providers(node, policy, &manifests, &ranked, &all_ids, &mut errors);
    let chosen: BTreeMap<&str, &str> = providers
        .iter()
        .filter_map(|(name, ps)| Some((*name, node.choose_provider(name, ps)?)))
        .collect();
    let names = Names {
        node,
        all_ids: &all_ids,
        providers: &providers,
    };
    let mut edges = link(&names, policy, &manifests, &chosen, &mut errors);
    // what each app declared itself, before the other side is added
    let declared: Vec<(String, String)> = edges
        .iter()
        .flat_map(|(id, l)| l.conflicts.iter().map(move |o| (id.clone(), o.clone())))
        .collect();
    // `Conflicts=` is symmetric in effect: for the checks below, either side has it
    for (a, b) in &declared {
        if let Some(l) = edges.get_mut(b) {
            if !l.conflicts.contains(a) {
                l.conflicts.push(a.clone());
                l.conflicts.sort();
            }
        }
    }

    check_cycles(&edges, policy, &manifests, &mut errors);
    check_secrets(&manifests, &ranked, policy, &edges, &mut errors);
    check_shared_volumes(&manifests, &edges, &mut errors);
    check_ports(&manifests, &ranked, &edges, &mut errors);
    check_aliases(&manifests, &ranked, &edges, &mut errors);
    let unchosen = unchosen_providers(&chosen, &providers);
    show_only_valid_sides(&mut edges, &declared, policy, &errors);

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
        let links = edges.remove(&id).unwrap_or_default();
        let stale = stale.remove(&id);
        let rolled_back = rolled_back.remove(&id);
        catalog.valid.insert(
            id,
            ValidApp {
                manifest,
                source,
                links,
                in_target: false,
                stale,
                rolled_back,
                templates: None,
            },
        );
    }
    mark_target(&mut catalog, &unchosen);
    catalog
}

type Manifests = BTreeMap<String, (Manifest, PathBuf)>;
type Errors = BTreeMap<String, Vec<InputError>>;

/// The loaded apps, each checked on its own (and against its grants).
struct Parsed {
    /// The manifests that parsed, with their files, by id.
    manifests: Manifests,
    /// Every app's file, parsed or not, by stem.
    sources: BTreeMap<String, PathBuf>,
    /// Apps running their last good definition: why the current one is not used.
    stale: BTreeMap<String, InputError>,
    /// Apps running their previous definition after a failed update.
    rolled_back: BTreeMap<String, Box<crate::update::RolledBack>>,
    errors: Errors,
}

fn check_each(node: &NodeSettings, paths: &Paths, policy: &Policy, loaded: Vec<Loaded>) -> Parsed {
    let mut parsed = Parsed {
        manifests: BTreeMap::new(),
        sources: BTreeMap::new(),
        stale: BTreeMap::new(),
        rolled_back: BTreeMap::new(),
        errors: BTreeMap::new(),
    };
    for l in loaded {
        parsed.sources.insert(l.stem.clone(), l.path.clone());
        if let Some(e) = l.stale {
            parsed.stale.insert(l.stem.clone(), e);
        }
        let templates = l.rolled_back.as_ref().map(|r| r.templates.clone());
        if let Some(r) = l.rolled_back {
            parsed.rolled_back.insert(l.stem.clone(), r);
        }
        match l.manifest {
            Ok(m) => {
                let mut own = check_one(&m, &l.path, paths, templates.as_deref());
                let grant = policy.grants.of(m.id());
                for miss in crate::grants::missing(&m, node, grant) {
                    own.push(crate::grants::missing_error(
                        &l.path,
                        m.id(),
                        &miss,
                        &policy.grants.broken,
                    ));
                }
                if !own.is_empty() {
                    parsed.errors.insert(l.stem.clone(), own);
                }
                parsed.manifests.insert(l.stem, (m, l.path));
            }
            Err(e) => {
                parsed.errors.insert(l.stem, vec![e]);
            }
        }
    }
    parsed
}

/// Each provided name's providers (sorted), from the manifests that parsed, in rank order: a
/// name that is an app's id, one an installed app holds (unless the admin pinned the newcomer),
/// and providers over `MAX_PROVIDERS` are refused.
fn providers<'a>(
    node: &NodeSettings,
    policy: &Policy,
    manifests: &'a Manifests,
    ranked: &[&'a str],
    all_ids: &BTreeSet<String>,
    errors: &mut Errors,
) -> BTreeMap<&'a str, Vec<&'a str>> {
    let newcomer = |id: &str| !policy.installed(id);
    let mut providers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for &id in ranked {
        let (m, path) = &manifests[id];
        for name in &m.app.provides {
            let key = "[app] provides";
            if all_ids.contains(name.as_str()) {
                push_err(
                    errors,
                    id,
                    path,
                    key,
                    format!("`{name}` is the id of an app"),
                );
                continue;
            }
            let ps = providers.entry(name.as_str()).or_default();
            let holder = ps.iter().find(|p| !newcomer(p));
            if let (true, Some(holder)) = (newcomer(id), holder) {
                if node.pinned(name.as_str()) != Some(id) {
                    push_err(
                        errors,
                        id,
                        path,
                        key,
                        format!(
                            "`{name}` is provided by installed app `{holder}`: a newcomer cannot \
                             take it over (the admin chooses it with `{name} = \"{id}\"` in \
                             node.toml's [providers])"
                        ),
                    );
                    continue;
                }
            }
            if ps.len() >= MAX_PROVIDERS {
                push_err(
                    errors,
                    id,
                    path,
                    key,
                    format!("`{name}` already has {MAX_PROVIDERS} providers, the most allowed"),
                );
                continue;
            }
            ps.push(id);
        }
    }
    for ps in providers.values_mut() {
        ps.sort();
    }
    providers
}

/// What a name in `requires`, `after` or `conflicts` can stand for.
struct Names<'a> {
    node: &'a NodeSettings,
    all_ids: &'a BTreeSet<String>,
    providers: &'a BTreeMap<&'a str, Vec<&'a str>>,
}

impl Names<'_> {
    /// The apps a name stands for: the app of that id, else the name's providers, else the app
    /// node.toml pins it to (one that exists but does not parse: the edge is kept).
    fn resolve(&self, name: &str) -> Option<Vec<String>> {
        if self.all_ids.contains(name) {
            return Some(vec![name.to_string()]);
        }
        if let Some(ps) = self.providers.get(name) {
            return Some(ps.iter().map(|p| p.to_string()).collect());
        }
        self.node
            .pinned(name)
            .filter(|v| self.all_ids.contains(*v))
            .map(|v| vec![v.to_string()])
    }
}

/// Each app's links from its `requires`, `companion_for`, `after` and `conflicts`, and from the
/// names it provides (providers of a name conflict with each other); sorted, without repeats.
fn link(
    names: &Names,
    policy: &Policy,
    manifests: &Manifests,
    chosen: &BTreeMap<&str, &str>,
    errors: &mut Errors,
) -> Edges {
    let newcomer = |id: &str| !policy.installed(id);
    let mut edges: Edges = BTreeMap::new();
    for (id, (m, path)) in manifests {
        let mut wants = Vec::new();
        let mut after = Vec::new();
        let required = m
            .dependencies
            .requires
            .iter()
            .chain(m.app.companion_for.iter());
        for (key, list, pulls) in [
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
            for name in list {
                let key = if m.app.companion_for.as_ref() == Some(name) && pulls {
                    "[app] companion_for"
                } else {
                    key
                };
                match names.resolve(name.as_str()) {
                    // ordering with an app that is not installed (an optional one) is no ordering
                    None if !pulls => {}
                    None => push_err(
                        errors,
                        id,
                        path,
                        key,
                        format!("unknown app or provided name `{name}`"),
                    ),
                    Some(targets) if targets.iter().any(|t| t == id) => push_err(
                        errors,
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
            .filter(|n| {
                names
                    .providers
                    .get(n.as_str())
                    .is_some_and(|ps| ps.contains(&id.as_str()))
            })
            .flat_map(|n| names.providers.get(n.as_str()).into_iter().flatten())
            .filter(|p| *p != id)
            .map(|p| p.to_string())
            .collect();
        for name in &m.app.conflicts {
            for t in names.resolve(name.as_str()).into_iter().flatten() {
                if t == *id {
                    continue;
                }
                if newcomer(id) && !newcomer(&t) {
                    push_err(
                        errors,
                        id,
                        path,
                        "[app] conflicts",
                        format!(
                            "`{name}` is installed app `{t}`: a newcomer cannot stop an installed \
                             app (the admin masks or removes it instead)"
                        ),
                    );
                    continue;
                }
                conflicts.push(t);
            }
        }
        for list in [&mut wants, &mut after, &mut conflicts] {
            list.sort();
            list.dedup();
        }
        edges.insert(
            id.clone(),
            Links {
                wants,
                after,
                conflicts,
            },
        );
    }
    edges
}

/// Refuses the apps on dependency cycles (see `blamed_cycles`).
fn check_cycles(edges: &Edges, policy: &Policy, manifests: &Manifests, errors: &mut Errors) {
    let newcomer = |id: &str| !policy.installed(id);
    for cycle in blamed_cycles(edges, &newcomer) {
        let text = cycle.path.join(" → ");
        let msg = if cycle.among > crate::graph::LARGE_GROUP {
            format!("dependency cycle among {} apps, e.g. {text}", cycle.among)
        } else {
            format!("dependency cycle: {text}")
        };
        let id = &cycle.app;
        push_err(errors, id, &manifests[id].1, "[dependencies]", msg);
    }
}

/// A unit shows the other side of a conflict only when that side is a valid app: a refused
/// newcomer changes nothing in another app's unit. Nor does it order them: `After=` a refused
/// newcomer's failing unit is dropped.
fn show_only_valid_sides(
    edges: &mut Edges,
    declared: &[(String, String)],
    policy: &Policy,
    errors: &Errors,
) {
    for l in edges.values_mut() {
        l.conflicts.clear();
    }
    for (a, b) in declared {
        for (from, to) in [(a, b), (b, a)] {
            let mine = from == a;
            if !mine && errors.contains_key(a) {
                continue;
            }
            if let Some(l) = edges.get_mut(from) {
                l.conflicts.push(to.clone());
            }
        }
    }
    let refused = |x: &String| errors.contains_key(x) && !policy.installed(x);
    for l in edges.values_mut() {
        l.after.retain(|a| !refused(a));
        l.conflicts.sort();
        l.conflicts.dedup();
    }
}

/// The cycles to report, each as the app refused and its cycle. A newcomer that closes a cycle
/// is refused alone; installed apps only for a cycle that remains without the newcomers on one.
fn blamed_cycles(edges: &Edges, newcomer: &dyn Fn(&str) -> bool) -> Vec<Cycle> {
    let first = find_cycles(edges);
    let blamed: BTreeSet<&str> = first
        .iter()
        .map(|c| c.app.as_str())
        .filter(|id| newcomer(id))
        .collect();
    if blamed.is_empty() {
        return first;
    }
    let rest: Edges = edges
        .iter()
        .filter(|(id, _)| !blamed.contains(id.as_str()))
        .map(|(id, l)| (id.clone(), l.clone()))
        .collect();
    let mut out: Vec<Cycle> = first
        .iter()
        .filter(|c| blamed.contains(c.app.as_str()))
        .cloned()
        .collect();
    out.extend(find_cycles(&rest));
    out
}

/// Who owns each secret: the first app, installed ones first, that declares it without a grant to
/// receive it (and the apps that cannot run beside that one, its alternatives: bitcoin-knots for
/// bitcoin-core). Any other app must be granted the secret to declare it, and everyone takes the
/// owner's kind: a newcomer can neither receive an installed app's secret nor change what it is.
fn check_secrets(
    manifests: &BTreeMap<String, (Manifest, PathBuf)>,
    ranked: &[&str],
    policy: &Policy,
    edges: &Edges,
    errors: &mut BTreeMap<String, Vec<InputError>>,
) {
    let mut owners: BTreeMap<&str, (SecretKind, Vec<&str>)> = BTreeMap::new();
    for &id in ranked {
        let (m, path) = &manifests[id];
        let grant = policy.grants.of(id);
        let conflicts = edges.get(id).map(|e| &e.conflicts);
        for (name, decl) in &m.secrets {
            if grant.allows_secret(name.as_str()) {
                continue;
            }
            let key = format!("[secrets] {name}");
            match owners.get_mut(name.as_str()) {
                None => {
                    owners.insert(name.as_str(), (decl.kind, vec![id]));
                }
                Some((kind, os)) => {
                    let alternative = os
                        .iter()
                        .all(|o| conflicts.is_some_and(|c| c.iter().any(|x| x == o)));
                    if !alternative {
                        push_err(
                            errors,
                            id,
                            path,
                            key,
                            format!(
                                "belongs to `{}`: receiving it needs a grant, `secrets = \
                                 [\"{name}\"]` in node.toml's [grants.{id}] or in {}/",
                                os[0],
                                crate::grants::ADMIN_DIR
                            ),
                        );
                    } else if *kind != decl.kind {
                        push_err(errors, id, path, key, kind_error(os[0], *kind));
                    } else {
                        os.push(id);
                    }
                }
            }
        }
    }
    // receivers: the owner's kind, or where nobody owns it, the first receiver's
    let mut first: BTreeMap<&str, (SecretKind, &str)> = BTreeMap::new();
    for &id in ranked {
        let (m, path) = &manifests[id];
        let grant = policy.grants.of(id);
        for (name, decl) in m
            .secrets
            .iter()
            .filter(|(n, _)| grant.allows_secret(n.as_str()))
        {
            let fixed = match owners.get(name.as_str()) {
                Some((kind, os)) => Some((*kind, os[0])),
                None => first.get(name.as_str()).copied(),
            };
            match fixed {
                Some((kind, by)) if kind != decl.kind => push_err(
                    errors,
                    id,
                    path,
                    format!("[secrets] {name}"),
                    kind_error(by, kind),
                ),
                Some(_) => {}
                None => {
                    first.insert(name.as_str(), (decl.kind, id));
                }
            }
        }
    }
}

fn kind_error(owner: &str, kind: SecretKind) -> String {
    format!(
        "its kind is fixed by `{owner}`, which declared it first: `{}`",
        kind.as_str()
    )
}

/// Checks that need only the one manifest, beyond what its types enforce.
/// `templates`: where a rolled-back app's previous templates are (else the installed ones).
fn check_one(
    m: &Manifest,
    path: &std::path::Path,
    paths: &Paths,
    template_dir: Option<&std::path::Path>,
) -> Vec<InputError> {
    let mut errs = Vec::new();
    let mut err = |key: &str, msg: String| errs.push(InputError::at_key(path, key, msg));
    let id = m.id();
    if let Some(why) = reserved(id) {
        err("[app] id", why);
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
        } else if let Some(why) = changed_health_cmd(h.cmd.as_str()) {
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
    let mut templates = BTreeSet::new();
    for f in &m.config {
        if !templates.insert(f.template.as_str()) {
            err(
                "[[config]] template",
                format!("`{}` is listed twice", f.template),
            );
        }
        let t = match template_dir {
            Some(dir) => dir.join(f.template.as_str()),
            None => paths.template(id, f.template.as_str()),
        };
        if !t.is_file() {
            err(
                "[[config]] template",
                format!("`{}` not found at {}", f.template, t.display()),
            );
        }
    }
    if !m.update.reversible && m.update.snapshot.is_empty() {
        err(
            "[update] snapshot",
            "`reversible = false` needs what to copy before an update: list the paths below \
             the app's data dir (its database, not chain data)"
                .to_string(),
        );
    }
    if m.update.reversible && !m.update.snapshot.is_empty() {
        err(
            "[update] snapshot",
            "only an app with `reversible = false` is snapshotted: set it, or drop the list"
                .to_string(),
        );
    }
    if !m.update.snapshot.is_empty() && !crate::init::has_data(m) {
        err(
            "[update] snapshot",
            "the app mounts no data volume of its own to snapshot".to_string(),
        );
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

/// Why podman would not run `cmd` as written through quadlet's `HealthCmd=`: quadlet strips a
/// double quote at either end of the value (the command would lose its closing quote), and podman
/// takes `none` for "no health check", while the unit still waits for one (`Notify=healthy`).
fn changed_health_cmd(cmd: &str) -> Option<&'static str> {
    if cmd.trim().eq_ignore_ascii_case("none") {
        return Some("`none` would disable the health check the unit waits for");
    }
    (cmd.starts_with('"') || cmd.ends_with('"')).then_some(
        "starts or ends with `\"`, which quadlet strips: rewrite it so a double quote is neither \
         its first nor its last character",
    )
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
/// to the wrong one. Container names are taken first; among aliases the first (installed apps
/// first, then by id) keeps it.
fn check_aliases(
    manifests: &BTreeMap<String, (Manifest, PathBuf)>,
    ranked: &[&str],
    edges: &Edges,
    errors: &mut BTreeMap<String, Vec<InputError>>,
) {
    let mut owners: BTreeMap<String, Vec<&str>> = manifests
        .keys()
        .map(|id| (crate::names::app(id).container(), vec![id.as_str()]))
        .collect();
    for &id in ranked {
        let (m, path) = &manifests[id];
        let conflicts = edges.get(id).map(|e| &e.conflicts);
        for alias in &m.container.network_aliases {
            let holders = owners.entry(alias.to_string()).or_default();
            let clash = holders
                .iter()
                .find(|h| **h != id && !conflicts.is_some_and(|c| c.iter().any(|x| x == *h)));
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
                .is_some_and(|l| l.wants.iter().any(|w| w == owner.as_str()));
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

/// Two apps that can run together must not publish the same host port: the first (installed
/// apps first, then by id) keeps it, the later one is refused, naming the first.
fn check_ports(
    manifests: &BTreeMap<String, (Manifest, PathBuf)>,
    ranked: &[&str],
    edges: &Edges,
    errors: &mut BTreeMap<String, Vec<InputError>>,
) {
    let mut owners: BTreeMap<(u16, Protocol), Vec<&str>> = BTreeMap::new();
    for &id in ranked {
        let (m, path) = &manifests[id];
        let conflicts = edges.get(id).map(|e| &e.conflicts);
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
            .filter(|(id, a)| !out.contains(*id) && a.links.wants.iter().any(|w| out.contains(w)))
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
