//! Rendering an app's config templates with node settings and secrets: strict (an unknown
//! variable is an error with file and line), atomic, and only when the content changed, so an
//! unchanged config never looks modified.

use crate::atomic;
use crate::manifest::Manifest;
use crate::node::NodeSettings;
use crate::paths::Paths;
use crate::secrets::{self, Secret};
use minijinja::{Environment, UndefinedBehavior, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum RenderError {
    /// The template is wrong: names the file and line.
    Template {
        file: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A declared secret does not exist yet (`archy-hook secrets` creates it).
    MissingSecret(String),
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Template {
                file,
                line: Some(l),
                message,
            } => {
                write!(f, "{}:{l}: {message}", file.display())
            }
            RenderError::Template {
                file,
                line: None,
                message,
            } => {
                write!(f, "{}: {message}", file.display())
            }
            RenderError::MissingSecret(n) => write!(f, "secret `{n}` does not exist yet"),
            RenderError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for RenderError {}

/// What `render` did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub target: PathBuf,
    pub changed: bool,
}

/// `<state>/<id>/config`.
pub fn config_dir(state: &Path, id: &str) -> PathBuf {
    crate::names::app(id).config_dir(state)
}

/// The template variables: `app`, `node`, `network` (the app's `[networks]` values for the node's
/// network), `secrets`, `bridge`.
pub fn variables(
    manifest: &Manifest,
    node: &NodeSettings,
    secrets: &BTreeMap<String, Secret>,
) -> Value {
    let secrets: BTreeMap<&str, &BTreeMap<&str, String>> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), &v.fields))
        .collect();
    minijinja::context! {
        app => minijinja::context! { id => manifest.id() },
        node => minijinja::context! {
            network => node.network.as_str(),
            chain => node.network.chain(),
            data_dir => node.data_dir.as_str(),
        },
        network => crate::networks::values(manifest, node.network),
        secrets => secrets,
        bridge => minijinja::context! {
            subnet => node.subnet.to_string(),
            gateway => node.subnet.gateway().to_string(),
        },
    }
}

/// Renders one template text. Pure: used by `render` and by benchmarks.
pub fn render_text(file: &Path, source: &str, vars: &Value) -> Result<String, RenderError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let name = file.display().to_string();
    let err = |e: minijinja::Error| RenderError::Template {
        file: file.to_path_buf(),
        line: e.line(),
        message: match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        },
    };
    env.add_template_owned(name.clone(), source.to_string())
        .map_err(err)?;
    env.get_template(&name)
        .map_err(err)?
        .render(vars)
        .map_err(err)
}

/// Renders every config the app declares into `<state>/<id>/config/`, 0600, each only when
/// changed. On any error nothing further is written and files already there stay as they were.
pub fn render(
    paths: &Paths,
    state: &Path,
    manifest: &Manifest,
    node: &NodeSettings,
) -> Result<Vec<Outcome>, RenderError> {
    render_app(paths, state, manifest, node, None)
}

/// `render`, for an app that may run its previous definition after a failed update: its
/// templates are then the previous ones.
pub fn render_app(
    paths: &Paths,
    state: &Path,
    manifest: &Manifest,
    node: &NodeSettings,
    rolled_back: Option<&crate::update::RolledBack>,
) -> Result<Vec<Outcome>, RenderError> {
    let mut loaded = BTreeMap::new();
    for name in manifest.secrets.keys() {
        let s = secrets::read(state, name.as_str())
            .map_err(|error| RenderError::Io {
                path: crate::names::secret_dir(state, name.as_str()),
                error,
            })?
            .ok_or_else(|| RenderError::MissingSecret(name.to_string()))?;
        loaded.insert(name.to_string(), s);
    }
    let vars = variables(manifest, node, &loaded);
    // render everything first: a later template's error must not leave earlier files updated
    let mut texts = Vec::new();
    for f in &manifest.config {
        let file =
            crate::update::template_file(paths, manifest.id(), rolled_back, f.template.as_str());
        let source = crate::load::read_text(&file).map_err(|e| RenderError::Template {
            file: file.clone(),
            line: None,
            message: e.message,
        })?;
        texts.push((f.template.as_str(), render_text(&file, &source, &vars)?));
    }
    let dir = config_dir(state, manifest.id());
    secrets::create_private_dir(&dir).map_err(|error| RenderError::Io {
        path: dir.clone(),
        error,
    })?;
    let mut out = Vec::new();
    for (name, text) in texts {
        let target = dir.join(name);
        let changed =
            atomic::write_if_changed(&target, text.as_bytes(), 0o600).map_err(|error| {
                RenderError::Io {
                    path: target.clone(),
                    error,
                }
            })?;
        out.push(Outcome { target, changed });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_variables_name_file_and_line() {
        let vars = minijinja::context! { node => minijinja::context! { chain => "main" } };
        let err = render_text(
            Path::new("t/bitcoin.conf"),
            "a\nchain={{ node.chian }}\n",
            &vars,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("t/bitcoin.conf:2:"), "{text}");
        let err = render_text(Path::new("t/x"), "{% if %}", &vars).unwrap_err();
        assert!(err.to_string().contains("syntax"), "{err}");
        assert_eq!(
            render_text(Path::new("t/x"), "c={{ node.chain }}\n", &vars).unwrap(),
            "c=main\n"
        );
    }
}
