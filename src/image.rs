//! What `archy-hook ensure-image` does to have an app's image before its container starts: keep
//! the one in local storage, build it from its local build context, pull it from a registry
//! node.toml allows, or refuse, saying why. Pure: the hook gathers the facts and does the action.

use crate::manifest::{Image, PullPolicy};
use crate::node::Registries;
use std::path::PathBuf;

/// What to do about the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Use the image in local storage.
    Keep,
    /// `podman build` it from this context (a failure is the start's failure).
    Build(PathBuf),
    /// `podman pull` it; without TLS verification only for a registry listed as insecure.
    Pull { tls_verify: bool },
    /// No way to have it: the reason, for the unit's journal.
    Refuse(String),
}

/// The decision, and the build context the manifest names when it is missing (worth a notice:
/// the package that ships it may be broken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub missing_context: Option<PathBuf>,
}

/// `present`: the image is in local storage. `context`: the build context's path and whether it
/// is a directory, when the manifest names one.
pub fn decide(
    image: &Image,
    present: bool,
    context: Option<(PathBuf, bool)>,
    registries: &Registries,
) -> Decision {
    let decision = |action| Decision {
        action,
        missing_context: None,
    };
    let reference = image.reference.as_str();
    let policy = image.pull;
    if present && matches!(policy, PullPolicy::Missing | PullPolicy::Never) {
        return decision(Action::Keep);
    }
    let mut missing_context = None;
    if !present {
        match context {
            Some((dir, true)) => return decision(Action::Build(dir)),
            Some((dir, false)) => missing_context = Some(dir),
            None => {}
        }
    }
    let action = if policy == PullPolicy::Never {
        Action::Refuse(format!(
            "image {reference} is not present and pull = \"never\": load it (podman load) or build it"
        ))
    } else {
        let registry = registry_of(reference);
        let listed = |list: &[crate::text::Text]| list.iter().any(|r| r.as_str() == registry);
        if listed(&registries.allowed) {
            Action::Pull {
                tls_verify: !listed(&registries.insecure),
            }
        } else if present {
            // pull = always/newer, but the registry is not allowed: keep what is there
            Action::Keep
        } else {
            Action::Refuse(format!(
                "image {reference} is not present, and its registry {registry} is not allowed: \
                 add it to [registries] allowed in /etc/archipelago/node.toml, or load the image \
                 with `podman load`"
            ))
        }
    };
    Decision {
        action,
        missing_context,
    }
}

/// The registry part of an image reference, as podman resolves short names with docker.io.
pub fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(reference: &str, build: bool, pull: &str) -> Image {
        let build = if build { "build = \"b\"\n" } else { "" };
        toml::from_str(&format!("ref = \"{reference}\"\n{build}pull = \"{pull}\"")).unwrap()
    }

    fn registries(allowed: &[&str], insecure: &[&str]) -> Registries {
        let list = |l: &[&str]| {
            l.iter()
                .map(|r| format!("\"{r}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        toml::from_str(&format!(
            "allowed = [{}]\ninsecure = [{}]",
            list(allowed),
            list(insecure)
        ))
        .unwrap()
    }

    const LOCAL: &str = "localhost/app:1";
    const REMOTE: &str = "registry.example:5000/app:1";

    #[test]
    fn the_table() {
        let ctx = |is_dir| Some((PathBuf::from("/ctx"), is_dir));
        let none = registries(&[], &[]);
        let allowed = registries(&["registry.example:5000"], &[]);
        let insecure = registries(&["registry.example:5000"], &["registry.example:5000"]);
        let pull = |tls_verify| Action::Pull { tls_verify };
        let refused = |a: &Action| matches!(a, Action::Refuse(_));
        // (image, present, context, registries) -> action
        type Case<'a> = (Image, bool, Option<(PathBuf, bool)>, &'a Registries, Action);
        let cases: Vec<Case> = vec![
            // present, pull missing/never: kept, whatever else
            (
                image(LOCAL, true, "missing"),
                true,
                ctx(true),
                &allowed,
                Action::Keep,
            ),
            (
                image(REMOTE, false, "never"),
                true,
                None,
                &none,
                Action::Keep,
            ),
            // absent with a context: built, before any registry, whatever the policy
            (
                image(REMOTE, true, "missing"),
                false,
                ctx(true),
                &allowed,
                Action::Build("/ctx".into()),
            ),
            (
                image(REMOTE, true, "never"),
                false,
                ctx(true),
                &none,
                Action::Build("/ctx".into()),
            ),
            (
                image(REMOTE, true, "always"),
                false,
                ctx(true),
                &allowed,
                Action::Build("/ctx".into()),
            ),
            // absent, no context: pulled from an allowed registry
            (
                image(REMOTE, false, "missing"),
                false,
                None,
                &allowed,
                pull(true),
            ),
            (
                image(REMOTE, true, "missing"),
                false,
                ctx(false),
                &allowed,
                pull(true),
            ),
            (
                image(REMOTE, false, "missing"),
                false,
                None,
                &insecure,
                pull(false),
            ),
            // present, always/newer: pulled again where allowed, else kept
            (
                image(REMOTE, false, "always"),
                true,
                None,
                &allowed,
                pull(true),
            ),
            (
                image(REMOTE, false, "newer"),
                true,
                None,
                &allowed,
                pull(true),
            ),
            (
                image(REMOTE, false, "always"),
                true,
                None,
                &none,
                Action::Keep,
            ),
            // a present image's context is not built
            (
                image(REMOTE, true, "always"),
                true,
                ctx(true),
                &allowed,
                pull(true),
            ),
        ];
        for (i, (img, present, context, regs, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                decide(&img, present, context, regs).action,
                want,
                "case {i}"
            );
        }
        // refusals say why
        let never = decide(&image(REMOTE, false, "never"), false, None, &allowed).action;
        assert!(refused(&never));
        assert!(
            format!("{never:?}").contains("pull = \\\"never\\\""),
            "{never:?}"
        );
        let not_allowed = decide(&image(REMOTE, false, "missing"), false, None, &none).action;
        let Action::Refuse(why) = not_allowed else {
            panic!("{not_allowed:?}")
        };
        assert!(
            why.contains("registry registry.example:5000 is not allowed"),
            "{why}"
        );
        // a short name is docker.io's, which must be allowed by name
        let short = decide(&image("nginx:1", false, "missing"), false, None, &allowed).action;
        assert!(refused(&short), "{short:?}");
    }

    #[test]
    fn a_missing_context_is_noticed_and_the_image_still_sought() {
        let d = decide(
            &image(REMOTE, true, "missing"),
            false,
            Some((PathBuf::from("/ctx"), false)),
            &registries(&["registry.example:5000"], &[]),
        );
        assert_eq!(d.missing_context, Some(PathBuf::from("/ctx")));
        assert_eq!(d.action, Action::Pull { tls_verify: true });
        let present = decide(
            &image(REMOTE, true, "missing"),
            true,
            Some(("/ctx".into(), false)),
            &Registries::default(),
        );
        assert_eq!(present.missing_context, None);
    }

    #[test]
    fn registry_names() {
        assert_eq!(registry_of("docker.io/library/nginx:1"), "docker.io");
        assert_eq!(registry_of("nginx"), "docker.io");
        assert_eq!(registry_of("lightninglabs/lnd:v1"), "docker.io");
        assert_eq!(registry_of("localhost/x:1"), "localhost");
        assert_eq!(registry_of("registry.local:5000/x"), "registry.local:5000");
    }
}
