//! The generator's effects, kept thin: read the inputs, decide whether this user is the node's,
//! write the rendered files, run quadlet on them.

use crate::catalog::{self, Catalog, InvalidApp};
use crate::error::InputError;
use crate::load;
use crate::node::NodeSettings;
use crate::paths::Paths;
use crate::render::{self, Context, Rendered};
use anyhow::{bail, Context as _};
use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Quadlet's sources live here, inside the generator's output dir (not named `*.d`: quadlet takes
/// such dirs for drop-ins and skips them).
pub const SOURCE_DIR: &str = "archy-quadlet";
pub const DEFAULT_QUADLET: &str = "/usr/libexec/podman/quadlet";
const QUADLET_TIMEOUT: Duration = Duration::from_secs(60);
/// The most app manifests a node may have. Validation is linear in apps and edges (`make bench`
/// shows 10,000 apps of every shape within its budget); past this bound the set is refused as a
/// whole, so that no package of tiny manifests can make a reload outlast the manager's patience.
pub const MAX_APPS: usize = 20_000;

/// Reads node settings and manifests and resolves them. When node.toml is broken, every app is
/// held back (as invalid, naming the node.toml error): starting apps with default settings could
/// point bitcoind at the wrong data dir.
pub fn load_catalog(paths: &Paths) -> (Result<NodeSettings, InputError>, Catalog) {
    let node = load::read_node(paths);
    // with a broken node.toml every app is held back anyway
    let network = node.as_ref().map(|n| n.network).unwrap_or_default();
    let mut loaded = load::load_all(paths, network);
    crate::update::apply_rollbacks(paths, network, &mut loaded);
    if loaded.len() > MAX_APPS {
        // a bound on what one reload may cost, whatever shape the manifests have
        let e = InputError::new(
            &paths.vendor_apps(),
            format!(
                "{} app manifests are more than the {MAX_APPS} a node may have: none is rendered",
                loaded.len()
            ),
        );
        let mut c = Catalog::default();
        for l in loaded {
            c.invalid.insert(
                l.stem.clone(),
                InvalidApp {
                    stem: l.stem,
                    source: l.path,
                    errors: vec![e.clone()],
                },
            );
        }
        return (node, c);
    }
    let catalog = match &node {
        Ok(node) => resolve_with_last_good(node, paths, loaded),
        Err(e) => {
            let mut c = Catalog::default();
            for l in loaded {
                let mut errors = vec![e.clone()];
                errors.extend(l.manifest.err());
                c.invalid.insert(
                    l.stem.clone(),
                    InvalidApp {
                        stem: l.stem,
                        source: l.path,
                        errors,
                    },
                );
            }
            c
        }
    };
    let mut catalog = catalog;
    for app in catalog.valid.values_mut() {
        app.templates = templates_hash(paths, app);
    }
    (node, catalog)
}

/// The hash of a valid app's config templates (the previous definition's for a rolled-back app);
/// None without templates, or when one cannot be read (its render hook then says why).
fn templates_hash(paths: &Paths, app: &catalog::ValidApp) -> Option<String> {
    if app.manifest.config.is_empty() {
        return None;
    }
    let mut templates = Vec::new();
    for f in &app.manifest.config {
        let name = f.template.as_str();
        let file = crate::update::template_file(
            paths,
            app.manifest.id(),
            app.rolled_back.as_deref(),
            name,
        );
        templates.push((name.to_string(), fs::read(file).ok()?));
    }
    Some(crate::update::version_of(b"", &templates))
}

/// Resolves the app set; an app that comes out invalid but has a last-known-good manifest (see
/// `archy-hook reconcile`) keeps that one, with the reason recorded, and the set is resolved again:
/// a bad edit never stops or changes a running app.
fn resolve_with_last_good(
    node: &NodeSettings,
    paths: &Paths,
    mut loaded: Vec<load::Loaded>,
) -> Catalog {
    let policy = policy(node, paths);
    let first = catalog::resolve(node, paths, &policy, loaded.clone());
    let Some(dir) = paths.last_good() else {
        return first;
    };
    let mut fell_back = false;
    for l in loaded.iter_mut() {
        let Some(bad) = first.invalid.get(&l.stem) else {
            continue;
        };
        // an older copy may not know that the app cannot run on this network
        if bad.errors.iter().any(crate::networks::is_unsupported) {
            continue;
        }
        let good = dir.join(format!("{}.toml", l.stem));
        if !good.is_file() {
            continue;
        }
        if let Ok(m) = load::read_manifest(&good, &l.stem, node.network) {
            l.stale = bad.errors.first().cloned();
            l.manifest = Ok(m);
            fell_back = true;
        }
    }
    if fell_back {
        catalog::resolve(node, paths, &policy, loaded)
    } else {
        first
    }
}

/// The grants, and the installed apps: those with a last-good copy, and those a vendor grants file
/// names.
pub fn policy(node: &NodeSettings, paths: &Paths) -> catalog::Policy {
    let grants = crate::grants::Grants::load(node, &paths.vendor_grants(), &paths.admin_grants());
    let mut installed = std::collections::BTreeSet::new();
    if let Some(dir) = paths.last_good() {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".toml")) {
                installed.insert(stem.to_string());
            }
        }
    }
    installed.extend(grants.vendored().map(str::to_string));
    catalog::Policy { grants, installed }
}

/// The service user named in node.toml, even when the rest of the file is broken.
pub fn configured_user(paths: &Paths, node: &Result<NodeSettings, InputError>) -> Option<String> {
    match node {
        Ok(n) => n.user.as_ref().map(|u| u.as_str().to_string()),
        Err(_) => {
            let text = fs::read_to_string(paths.node_toml()).ok()?;
            let table: toml::Table = toml::from_str(&text).ok()?;
            table.get("user")?.as_str().map(str::to_string)
        }
    }
}

/// Whether the current user is `wanted` (a name or a uid). No user configured means any user but
/// root: archy never renders apps for uid 0 (see `node::is_root`).
pub fn is_current_user(wanted: Option<&str>) -> bool {
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        return false;
    }
    let Some(wanted) = wanted else { return true };
    if wanted.parse::<u32>().ok() == Some(uid.as_raw()) {
        return true;
    }
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .is_some_and(|u| u.name == wanted)
}

/// Renders everything for `paths` with `ctx`.
pub fn render(paths: &Paths, ctx: &Context) -> Rendered {
    let (node, catalog) = load_catalog(paths);
    render_loaded(&node, &catalog, ctx)
}

/// Renders an already loaded catalog (with defaults where node.toml is broken: its apps are all
/// held back as invalid then, so the defaults shape nothing that runs).
pub fn render_loaded(
    node: &Result<NodeSettings, InputError>,
    catalog: &Catalog,
    ctx: &Context,
) -> Rendered {
    let defaults = NodeSettings::default();
    render::render_all(node.as_ref().unwrap_or(&defaults), catalog, ctx)
}

/// Writes the rendered files under `out` (the generator's normal dir).
pub fn write_output(out: &Path, rendered: &Rendered) -> anyhow::Result<PathBuf> {
    let src = out.join(SOURCE_DIR);
    if src.exists() {
        fs::remove_dir_all(&src).with_context(|| format!("removing stale {}", src.display()))?;
    }
    fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
    write_files(&src, &rendered.sources)?;
    for (name, text) in &rendered.units {
        let path = out.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let wants = out.join("default.target.wants");
    fs::create_dir_all(&wants).with_context(|| format!("creating {}", wants.display()))?;
    let link = wants.join(render::TARGET);
    let _ = fs::remove_file(&link);
    symlink(format!("../{}", render::TARGET), &link)
        .with_context(|| format!("linking {}", link.display()))?;
    Ok(src)
}

/// Writes `files` into `dir`, on all cores when there are many (a 1000-app reload).
fn write_files(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    let write = |(name, text): &(String, String)| -> anyhow::Result<()> {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    crate::parallel::map(files, write).into_iter().collect()
}

/// What quadlet printed. It converts every file it can even when one fails, and then exits 1.
pub struct QuadletRun {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
}

impl QuadletRun {
    /// Why quadlet converted no service from the source file `name`, as it said it; None when it
    /// did not name the file.
    pub fn error_for(&self, name: &str) -> Option<String> {
        let needle = format!("converting \"{name}\": ");
        self.stderr
            .lines()
            .find_map(|l| l.split_once(&needle).map(|(_, why)| why.trim().to_string()))
    }
}

/// The app ids among `rendered`'s sources that have no service in `services` (quadlet's output
/// names): quadlet refused their `.container`.
pub fn unconverted(rendered: &Rendered, has_service: impl Fn(&str) -> bool) -> Vec<(&str, String)> {
    rendered
        .sources
        .iter()
        .filter_map(|(name, _)| {
            let id = crate::names::app_of_quadlet_source(name)?;
            let service = crate::names::app(id).service();
            (!has_service(&service)).then_some((id, name.clone()))
        })
        .collect()
}

/// Runs quadlet on exactly the files in `src`: into `out`, or with `-dryrun` when `out` is None.
/// Its exit status is in the result: a failure on one file leaves the others converted.
pub fn run_quadlet(quadlet: &Path, src: &Path, out: Option<&Path>) -> anyhow::Result<QuadletRun> {
    let mut cmd = Command::new(quadlet);
    cmd.env("QUADLET_UNIT_DIRS", src)
        .arg("-user")
        .arg("-no-kmsg-log");
    match out {
        Some(out) => cmd.arg(out),
        None => cmd.arg("-dryrun"),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", quadlet.display()))?;
    // read both pipes on threads so a chatty quadlet cannot block on a full pipe
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    // quadlet closes its output when it exits: wait for that (no polling delay), with a deadline
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(t_out.join().unwrap_or_default());
    });
    let Ok(stdout) = exited.recv_timeout(QUADLET_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "{} did not finish within {:?}: killed",
            quadlet.display(),
            QUADLET_TIMEOUT
        );
    };
    let status = child.wait()?;
    Ok(QuadletRun {
        stdout,
        stderr: t_err.join().unwrap_or_default(),
        success: status.success(),
    })
}

/// The quadlet binary: `$ARCHY_QUADLET` or podman's default location.
pub fn quadlet_path() -> PathBuf {
    std::env::var_os("ARCHY_QUADLET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_QUADLET))
}
