//! An app's init steps (`[[init]]`): what `archy-hook init` decides (whether a step is done, how
//! its one-off container runs) and where a step's kept output lives. Pure but for reading the
//! data dir; the hook runs podman.

use crate::manifest::{InitStep, Manifest, VolumeSource};
use crate::node::NodeSettings;
use crate::text::SubPath;
use std::io;
use std::path::{Path, PathBuf};

/// The step's `creates`, rendered for this node and checked (see [`data_path`]).
pub fn creates(node: &NodeSettings, m: &Manifest, step: &InitStep) -> Result<SubPath, String> {
    let key = format!("[[init]] creates (step `{}`)", step.name);
    data_path(node, m, &key, step.creates.as_str())
}

/// A path below the app's data dir written as a template (`{{ node.network }}`...; no
/// secrets), rendered for this node and checked: relative, no `..`, not the dir itself. The
/// error names `key`.
pub fn data_path(
    node: &NodeSettings,
    m: &Manifest,
    key: &str,
    template: &str,
) -> Result<SubPath, String> {
    let vars = crate::config::variables(m, node, &Default::default());
    let text =
        crate::config::render_text(Path::new(key), template, &vars).map_err(|e| e.to_string())?;
    let path = SubPath::try_from(text).map_err(|e| format!("{key}: {e}"))?;
    if path.as_str().split('/').all(|p| p.is_empty() || p == ".") {
        return Err(format!("{key}: names the data dir itself"));
    }
    Ok(path)
}

/// Whether `creates` exists below `data` (the app's data dir), looked at without following a
/// symbolic link anywhere below `data`: the app's container can write there, and a link it
/// planted must not make a step look done (or make archy look elsewhere).
pub fn is_done(data: &Path, creates: &str) -> io::Result<bool> {
    let mut at = data.to_path_buf();
    for part in creates.split('/').filter(|p| !p.is_empty() && *p != ".") {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a symbolic link: refusing to follow it",
                    at.display()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// `<state>/<id>/init/`: the kept outputs (0700), never mounted into a container.
pub fn output_dir(state: &Path, id: &str) -> PathBuf {
    crate::names::app(id).init_dir(state)
}

/// Where a step's output is kept.
pub fn output_file(state: &Path, id: &str, step: &str) -> PathBuf {
    output_dir(state, id).join(step)
}

/// Where a kept output that a new run of its step would replace is moved first (a wallet
/// created for another network keeps its seed): `<step>.replaced-<unix time>[.<n>]`.
pub fn replaced_file(state: &Path, id: &str, step: &str, unix_time: u64, n: u32) -> PathBuf {
    let name = match n {
        0 => format!("{step}.replaced-{unix_time}"),
        n => format!("{step}.replaced-{unix_time}.{n}"),
    };
    output_dir(state, id).join(name)
}

/// Where `keep_output` put things.
pub struct Kept {
    pub file: PathBuf,
    /// Where an earlier output went, if there was one.
    pub moved_aside: Option<PathBuf>,
}

/// Writes a step's output to `<state>/<id>/init/<step>` (0600, in a 0700 dir, atomically). An
/// output kept before is first renamed to a `replaced` name no other file has: never lost, never
/// overwritten. Its "shown" marker goes with it.
pub fn keep_output(
    state: &Path,
    id: &str,
    step: &str,
    output: &[u8],
    unix_time: u64,
) -> io::Result<Kept> {
    let dir = output_dir(state, id);
    crate::secrets::create_private_dir(&dir)?;
    let file = output_file(state, id, step);
    let mut moved_aside = None;
    if std::fs::symlink_metadata(&file).is_ok() {
        let aside = (0..)
            .map(|n| replaced_file(state, id, step, unix_time, n))
            .find(|p| std::fs::symlink_metadata(p).is_err())
            .expect("a free name");
        std::fs::rename(&file, &aside)?;
        let _ = std::fs::remove_file(shown_marker(state, id, step));
        moved_aside = Some(aside);
    }
    crate::atomic::write(&file, output, 0o600)?;
    Ok(Kept { file, moved_aside })
}

/// The marker saying when a kept output was shown.
pub fn shown_marker(state: &Path, id: &str, step: &str) -> PathBuf {
    output_dir(state, id).join(format!("{step}.shown"))
}

/// The arguments of `podman` for the step's one-off container: the app's image, user, volumes,
/// configs, tmpfs and environment, its hardening, no network, the step's command in place of
/// the image's entrypoint, killed after the step's timeout. `state` is the resolved
/// `$XDG_STATE_HOME/archipelago`.
pub fn podman_args(
    node: &NodeSettings,
    m: &Manifest,
    state: &Path,
    step: &InitStep,
) -> Vec<String> {
    let id = m.id();
    let c = &m.container;
    let names = crate::names::app(id);
    let resolve = |src: String| crate::names::resolve_state(&src, state);
    let mut a: Vec<String> = [
        "run",
        "--rm",
        "--replace",
        "--name",
        &names.init_container(step.name.as_str()),
        "--network",
        "none",
        "--pull",
        "never",
        "--cap-drop",
        "all",
        "--security-opt",
        "no-new-privileges",
        "--timeout",
        &step.timeout.whole_secs().to_string(),
        "--label",
        &format!("archy.init={id}"),
        // the step's output reaches the hook only (a seed is never in a log): passthrough gives
        // the container the hook's own stdout and stderr, with nothing logged by podman
        "--log-driver",
        "passthrough",
        // in the unit's own cgroup, with no cgroup of its own: the journal files the step's
        // stderr under the app's unit, and stopping the unit stops the step. Not `split` (as
        // quadlet runs the app): run from an ExecStartPre, that makes a child of the unit's
        // `.control` cgroup and enables controllers there, and where the user manager has
        // controllers delegated (a booted node, not the test bed) systemd can then spawn no
        // further control process: the next ExecStartPre fails with EBUSY, result 'resources'
        "--cgroups",
        "disabled",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(user) = &c.user {
        let (uid, gid) = user.ids();
        a.push(format!("--user={uid}:{gid}"));
        if uid != 0 {
            a.push(format!("--userns=keep-id:uid={uid},gid={gid}"));
        }
    }
    if let Some(ns) = &c.userns {
        a.push(format!("--userns={ns}"));
    }
    if c.read_only {
        a.push("--read-only".into());
    }
    for v in &c.volumes {
        let src = resolve(names.unit_volume_source(node, v));
        let ro = if v.is_read_only() { ":ro" } else { "" };
        a.push("--volume".into());
        a.push(format!("{src}:{}{ro}", v.target));
    }
    for f in &m.config {
        let src = names.config_dir(state).join(f.template.as_str());
        a.push("--volume".into());
        a.push(format!("{}:{}:ro", src.display(), f.target));
    }
    for t in &c.tmpfs {
        a.push(format!("--tmpfs={t}"));
    }
    for (k, v) in &c.environment {
        a.push(format!("--env={k}={v}"));
    }
    let words: Vec<&str> = step.command.iter().map(|w| w.as_str()).collect();
    a.push(format!(
        "--entrypoint={}",
        serde_json::to_string(&words).expect("strings serialise")
    ));
    a.push(m.image.reference.as_str().to_string());
    a
}

/// Whether the app mounts any data volume of its own (`creates` is below its data dir).
pub fn has_data(m: &Manifest) -> bool {
    m.container
        .volumes
        .iter()
        .any(|v| v.from == VolumeSource::Data && v.app.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(extra: &str) -> Manifest {
        toml::from_str(&format!(
            "[app]\nid = \"lnd\"\n[image]\nref = \"docker.io/lightninglabs/lnd:v1\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn the_step_runs_like_the_app_without_a_network() {
        let m = manifest(
            "[container]\nenvironment = { A = \"b\" }\n\
             [[container.volumes]]\nfrom = \"data\"\ntarget = \"/root/.lnd\"\n\
             [[container.volumes]]\nfrom = \"secrets\"\nsubpath = \"w\"\ntarget = \"/run/secrets/w\"\n\
             [secrets]\nw = \"password\"\n\
             [[config]]\ntemplate = \"lnd.conf\"\ntarget = \"/etc/lnd/lnd.conf\"\n\
             [[init]]\nname = \"wallet\"\ncommand = [\"/bin/sh\", \"/etc/lnd/create-wallet.sh\"]\ncreates = \"data/chain/bitcoin/{{ node.network }}/wallet.db\"\nkeep_output = true\n",
        );
        let a = podman_args(
            &NodeSettings::default(),
            &m,
            Path::new("/s/archipelago"),
            &m.init[0],
        );
        let text = a.join(" ");
        for want in [
            "--network none",
            "--cap-drop all",
            "--timeout 300",
            "--name archy-lnd-init-wallet",
            "--cgroups disabled",
            "--volume /var/lib/archipelago/lnd:/root/.lnd",
            "--volume /s/archipelago/secrets/w:/run/secrets/w:ro",
            "--volume /s/archipelago/lnd/config/lnd.conf:/etc/lnd/lnd.conf:ro",
            "--env=A=b",
            "--entrypoint=[\"/bin/sh\",\"/etc/lnd/create-wallet.sh\"]",
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
        assert_eq!(a.last().unwrap(), "docker.io/lightninglabs/lnd:v1");
        assert!(has_data(&m));
        assert_eq!(
            creates(&NodeSettings::default(), &m, &m.init[0])
                .unwrap()
                .as_str(),
            "data/chain/bitcoin/mainnet/wallet.db"
        );
    }

    #[test]
    fn creates_must_render_to_a_path_below_the_data_dir() {
        let step = |c: &str| {
            manifest(&format!(
                "[[init]]\nname = \"s\"\ncommand = [\"true\"]\ncreates = \"{c}\"\n"
            ))
        };
        let node = NodeSettings::default();
        for (bad, why) in [
            ("../x", "`..`"),
            ("{{ nope }}", "undefined"),
            ("{{ secrets.x }}", "undefined"),
            (".", "data dir itself"),
            ("a b", "characters"),
        ] {
            let m = step(bad);
            let e = creates(&node, &m, &m.init[0]).unwrap_err();
            assert!(e.contains(why) && e.contains("creates"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_kept_output_is_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path();
        let first = keep_output(state, "lnd", "wallet", b"seed one", 100).unwrap();
        assert!(first.moved_aside.is_none());
        std::fs::write(shown_marker(state, "lnd", "wallet"), "shown").unwrap();
        // the step runs again (another network), twice within the same second
        let second = keep_output(state, "lnd", "wallet", b"seed two", 200).unwrap();
        let third = keep_output(state, "lnd", "wallet", b"seed three", 200).unwrap();
        let read = |p: &Path| std::fs::read(p).unwrap();
        assert_eq!(read(&second.moved_aside.unwrap()), b"seed one");
        assert_eq!(read(third.moved_aside.as_ref().unwrap()), b"seed two");
        assert!(third
            .moved_aside
            .unwrap()
            .ends_with("wallet.replaced-200.1"));
        assert_eq!(read(&third.file), b"seed three");
        assert!(
            !shown_marker(state, "lnd", "wallet").exists(),
            "the new output was never shown"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&third.file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn done_means_there_and_never_through_a_link() {
        let d = tempfile::tempdir().unwrap();
        assert!(!is_done(d.path(), "a/b/wallet.db").unwrap());
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/wallet.db"), "x").unwrap();
        assert!(is_done(d.path(), "a/b/wallet.db").unwrap());
        // a link the container planted, to somewhere that has the file
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(other.path().join("b")).unwrap();
        std::fs::write(other.path().join("b/wallet.db"), "x").unwrap();
        std::os::unix::fs::symlink(other.path(), d.path().join("c")).unwrap();
        assert!(is_done(d.path(), "c/b/wallet.db").is_err());
    }
}
