//! Helpers shared by the generator's integration tests: input trees in temp dirs, rendering
//! through the library with a fixed context, and a stable text form of everything rendered.

use archy::catalog::Catalog;
use archy::generate;
use archy::paths::Paths;
use archy::render::{Context, Rendered};
use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

pub const HOOK: &str = "/usr/libexec/archipelago/archy-hook";
pub const VENDOR: &str = "usr/share/archipelago/apps";
pub const ADMIN: &str = "etc/archipelago/apps";
pub const NODE: &str = "etc/archipelago/node.toml";
pub const TEMPLATES: &str = "usr/share/archipelago/templates";
/// Where tests keep last-good copies (the user's state dir in real use).
pub const LAST_GOOD: &str = "state/last-good";
/// Where the catalog package installs its grants.
pub const GRANTS: &str = "usr/share/archipelago/grants.d/archy-catalog.toml";

/// The context every rendering test uses: no ARCHY_ROOT in units, the installed hook path.
pub fn ctx() -> Context {
    Context {
        archy_root: None,
        hook: HOOK.to_string(),
    }
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the catalog package installs below `root`: manifests, templates and its grants.
pub fn install_catalog(root: &Path) {
    copy_dir(&manifest_dir().join("catalog/apps"), &root.join(VENDOR));
    copy_dir(
        &manifest_dir().join("catalog/templates"),
        &root.join(TEMPLATES),
    );
    let grants = root.join(GRANTS);
    fs::create_dir_all(grants.parent().expect("parent")).expect("mkdir");
    fs::copy(manifest_dir().join("catalog/grants.toml"), grants).expect("catalog grants");
}

/// An ARCHY_ROOT input tree in a temp dir, removed on drop.
pub struct Tree {
    dir: TempDir,
}

impl Tree {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("archy-test.")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// A tree holding the shipped catalog: catalog/apps as vendor manifests, catalog/templates
    /// as templates.
    pub fn catalog() -> Self {
        let t = Self::new();
        install_catalog(t.root());
        t
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The tree's paths, with its last-good dir (`state/last-good`, see `install`).
    pub fn paths(&self) -> Paths {
        Paths::new(Some(self.root().to_path_buf())).with_last_good(Some(self.path(LAST_GOOD)))
    }

    /// Marks `stem` installed, as reconcile does once it applied it: a last-good copy of its
    /// manifest as it is now.
    pub fn install(&self, stem: &str) {
        let from = [ADMIN, VENDOR]
            .iter()
            .map(|d| self.path(&format!("{d}/{stem}.toml")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no manifest {stem}"));
        self.write(
            &format!("{LAST_GOOD}/{stem}.toml"),
            fs::read(from).expect("read"),
        );
    }

    /// An admin grants file `/etc/archipelago/grants.d/<name>.toml`.
    pub fn grants(&self, name: &str, text: &str) -> PathBuf {
        self.write(&format!("etc/archipelago/grants.d/{name}.toml"), text)
    }

    /// Writes `rel` (creating its parents) and returns its full path.
    pub fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, text).expect("write");
        p
    }

    /// A vendor manifest `<stem>.toml`.
    pub fn vendor(&self, stem: &str, text: impl AsRef<[u8]>) -> PathBuf {
        self.write(&format!("{VENDOR}/{stem}.toml"), text)
    }

    pub fn admin(&self, stem: &str, text: impl AsRef<[u8]>) -> PathBuf {
        self.write(&format!("{ADMIN}/{stem}.toml"), text)
    }

    pub fn node(&self, text: &str) -> PathBuf {
        self.write(NODE, text)
    }

    pub fn template(&self, id: &str, file: &str, text: &str) -> PathBuf {
        self.write(&format!("{TEMPLATES}/{id}/{file}"), text)
    }

    /// Copies a fixture dir's contents over this tree.
    pub fn overlay(&self, src: &Path) {
        copy_dir(src, self.root());
    }

    pub fn render(&self) -> Rendered {
        generate::render(&self.paths(), &ctx())
    }

    pub fn catalog_of(&self) -> Catalog {
        generate::load_catalog(&self.paths()).1
    }
}

/// Copies a directory tree (regular files and dirs; symlinks are recreated as symlinks).
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("mkdir");
    for entry in fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let entry = entry.expect("entry");
        let ty = entry.file_type().expect("type");
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            copy_dir(&entry.path(), &to);
        } else if ty.is_symlink() {
            let target = fs::read_link(entry.path()).expect("readlink");
            let _ = fs::remove_file(&to);
            std::os::unix::fs::symlink(target, &to).expect("symlink");
        } else {
            fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

/// The text of the rendered source or unit `name`.
pub fn file<'a>(r: &'a Rendered, name: &str) -> &'a str {
    r.sources
        .iter()
        .chain(&r.units)
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.as_str())
        .unwrap_or_else(|| panic!("{name} not rendered; have {:?}", names(r)))
}

pub fn names(r: &Rendered) -> Vec<&str> {
    r.sources
        .iter()
        .chain(&r.units)
        .map(|(n, _)| n.as_str())
        .collect()
}

/// Values of `key=` lines (any section) in a unit text.
pub fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// Every rendered file, the target's wants and the problems, as one text: the tree's root is
/// replaced by `<ROOT>` and the digest label (a hash over text that contains the root) by
/// `<sha256>`, after checking it is one.
pub fn stable_text(root: &Path, r: &Rendered) -> String {
    let mut out = String::new();
    for (kind, files) in [("source", &r.sources), ("unit", &r.units)] {
        for (name, text) in files {
            out.push_str(&format!("===== {kind} {name}\n{text}"));
        }
    }
    out.push_str("===== target wants\n");
    for w in &r.target_wants {
        out.push_str(&format!("{w}\n"));
    }
    out.push_str("===== problems\n");
    for p in &r.problems {
        out.push_str(&format!("{p}\n"));
    }
    redact(root, &out)
}

pub fn redact(root: &Path, text: &str) -> String {
    let text = text.replace(&root.display().to_string(), "<ROOT>");
    // the templates' hash changes with any template edit, which the snapshot shows anyway
    let text = redact_hash(&text, "archy.templates=");
    redact_hash(&text, "archy.digest=")
}

/// Every sha256 after `marker` as `<sha256>`, after checking it is one.
fn redact_hash(text: &str, marker: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        let (head, tail) = rest.split_at(i + marker.len());
        out.push_str(head);
        let hex: String = tail.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        assert_eq!(
            hex.len(),
            64,
            "{marker} label is not a sha256: {}",
            &tail[..tail.len().min(80)]
        );
        out.push_str("<sha256>");
        rest = &tail[64..];
    }
    out.push_str(rest);
    out
}

/// The errors of the invalid app `stem`, as displayed, panicking if it is valid or absent.
pub fn errors_of(c: &Catalog, stem: &str) -> Vec<String> {
    match c.invalid.get(stem) {
        Some(a) => a.errors.iter().map(|e| e.to_string()).collect(),
        None => panic!(
            "`{stem}` is not invalid; valid: {:?}, invalid: {:?}",
            c.valid.keys().collect::<Vec<_>>(),
            c.invalid.keys().collect::<Vec<_>>()
        ),
    }
}

/// A TOML basic string for `s`, with every control character as a `\uXXXX` escape.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `err` names `file` and then either one of `keys` or `line` (1-based): the two ways an
/// error can point the operator at the offending spot.
pub fn names_spot(err: &str, file: &Path, keys: &[&str], line: usize) -> bool {
    let Some(rest) = err.strip_prefix(&file.display().to_string()) else {
        return false;
    };
    let at_line = rest.strip_prefix(&format!(":{line}:")).is_some_and(|r| {
        r.split_once(": ")
            .is_some_and(|(col, _)| col.chars().all(|c| c.is_ascii_digit()))
    });
    let at_key = rest.split_once(": ").is_some_and(|(pos, msg)| {
        (pos.is_empty() || pos.starts_with(':')) && keys.iter().any(|k| msg.starts_with(k))
    });
    at_line || at_key
}

/// The 1-based line of the first `{}` in `template`.
pub fn slot_line(template: &str) -> usize {
    template[..template.find("{}").expect("a {} slot")]
        .matches('\n')
        .count()
        + 1
}
