//! The built generator run for real, where the e2e bed's test root exists: inside it (chroot, in
//! a private mount namespace), with podman's own quadlet, then `systemd-analyze --user verify` on
//! every unit it produced. Without the root (or without root privileges) the test says SKIPPED
//! and why on stderr; it checks nothing then.
//!
//! The cached root is never changed: everything is created in a temp dir inside it and removed
//! afterwards; the hook binary, which units call at a fixed path below /usr/libexec, is placed
//! there through an overlay mounted only in the test's own mount namespace.

use crate::common::*;
use crate::injection::NASTY;
use crate::quadlet_parse::split_words;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where tests/e2e/sandbox.sh caches its roots (unless $ARCHY_E2E_CACHE says otherwise), one per
/// Debian suite: trixie/ by default, sid/ with ARCHY_E2E_SUITE=sid.
const DEFAULT_CACHE: &str = "/var/cache/archy-e2e";
const DEFAULT_SUITE: &str = "trixie";
const QUADLET: &str = "usr/libexec/podman/quadlet";

/// Lines of `systemd-analyze verify` about our units that are known not to matter. None so far:
/// a new line fails the test until someone decides it is harmless and says why here.
const KNOWN_HARMLESS: &[&str] = &[];

/// The test root, or why the test cannot run: $ARCHY_E2E_ROOT, else the bed's cached root of
/// $ARCHY_E2E_SUITE (trixie by default), as sandbox.sh builds it.
fn e2e_root() -> Result<PathBuf, String> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let suite = var("ARCHY_E2E_SUITE").map_or_else(
        || DEFAULT_SUITE.to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let root = var("ARCHY_E2E_ROOT").map_or_else(
        || {
            var("ARCHY_E2E_CACHE")
                .map_or_else(|| PathBuf::from(DEFAULT_CACHE), PathBuf::from)
                .join(&suite)
        },
        PathBuf::from,
    );
    if !root.join(QUADLET).is_file() {
        let how = if var("ARCHY_E2E_ROOT").is_some() {
            "ARCHY_E2E_ROOT names no test root; unset, the bed's root of ARCHY_E2E_SUITE is used"
                .to_string()
        } else {
            format!(
                "build Debian {suite}'s test root with `ARCHY_E2E_SUITE={suite} tests/e2e/sandbox.sh build`; \
                 ARCHY_E2E_SUITE=trixie (the default) or sid selects the bed's root, ARCHY_E2E_ROOT=DIR any root"
            )
        };
        return Err(format!(
            "{} not found ({how})",
            root.join(QUADLET).display()
        ));
    }
    for tool in ["usr/bin/systemd-analyze", "bin/sh", "usr/bin/env"] {
        if !root.join(tool).exists() {
            return Err(format!(
                "{} not found in the test root",
                root.join(tool).display()
            ));
        }
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root (chroot and a private mount namespace)".into());
    }
    for tool in ["unshare", "chroot", "mount", "timeout"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            return Err(format!("`{tool}` not found on PATH"));
        }
    }
    Ok(root)
}

/// A manifest whose free-text fields hold every nasty string the library accepts; returns it
/// with the strings it used as command items, environment values (V00, V01, ...) and health cmd.
fn nasty_app() -> (String, Vec<&'static str>, Vec<&'static str>, String) {
    let accepted: Vec<&'static str> = NASTY
        .iter()
        .copied()
        .filter(|s| {
            let t = Tree::new();
            let list = ["\"a\"".to_string(), toml_str(s)].join(", ");
            t.vendor(
                "x",
                format!("[app]\nid = \"x\"\n\n[image]\nref = \"r\"\n\n[container]\ncommand = [{list}]\n\n[health]\ncmd = {}\n", toml_str(s)),
            );
            t.catalog_of().valid.contains_key("x")
        })
        .collect();
    // most of them: a health cmd may not start or end with `"` (quadlet strips it)
    assert!(accepted.len() >= 32, "{accepted:?}");
    let health = "echo \"a  b\" 'c' \\ %h %% $HOME ${X} $$ ; x\ty \\".to_string();
    let mut text = String::from(
        "# Every nasty string archy accepts, in the fields quadlet passes on to podman.\n[app]\nid = \"nasty\"\nname = \"100% \\\\ $HOME\"\nautostart = false\n\n[image]\nref = \"docker.io/library/busybox:1.37\"\n\n[container]\n",
    );
    let items: Vec<String> = accepted.iter().map(|s| toml_str(s)).collect();
    text.push_str(&format!(
        "command = [{}]\n\n[container.environment]\n",
        items.join(", ")
    ));
    for (i, s) in accepted.iter().enumerate() {
        text.push_str(&format!("V{i:02} = {}\n", toml_str(s)));
    }
    text.push_str(&format!("\n[health]\ncmd = {}\n", toml_str(&health)));
    (text, accepted.clone(), accepted, health)
}

/// A word of `ExecStart=` as the process gets it: `%%` → `%` and `$$` → `$`; any specifier or
/// variable systemd would expand becomes a marker that cannot equal a manifest string.
fn systemd_literal(word: &str) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' | '$' => match chars.peek() {
                Some(&n) if n == c => {
                    chars.next();
                    out.push(c);
                }
                _ => out.push_str(&format!("\u{fffd}EXPANDED{c}\u{fffd}")),
            },
            c => out.push(c),
        }
    }
    out
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn generator_with_real_quadlet_passes_systemd_analyze_verify() {
    let root = match e2e_root() {
        Ok(root) => root,
        Err(why) => {
            // straight to stderr, not through the test harness's capture: a skip must show
            let msg = format!("SKIPPED: real quadlet + systemd-analyze verify: {why}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
            return;
        }
    };
    let root = root.canonicalize().expect("canonical root");
    let tmp = tempfile::Builder::new()
        .prefix("archy-test.")
        .tempdir_in(root.join("tmp"))
        .expect("temp dir inside the test root");
    let host = tmp.path().to_path_buf();
    // the same dir as seen inside the chroot
    let inside = Path::new("/").join(host.strip_prefix(&root).expect("below root"));
    let p = |rel: &str| host.join(rel);

    // the generator, and an input tree: the shipped catalog, one invalid app, one nasty app
    fs::create_dir_all(p("bin")).expect("mkdir");
    fs::copy(
        env!("CARGO_BIN_EXE_archy-generator"),
        p("bin/archy-generator"),
    )
    .expect("copy generator");
    let tree = p("tree");
    install_catalog(&tree);
    fs::write(
        tree.join(VENDOR).join("broken.toml"),
        "[app]\nid = \"broken\"\ncolour = \"red\"\n",
    )
    .expect("write");
    let (nasty, items, env_values, health) = nasty_app();
    fs::write(tree.join(VENDOR).join("nasty.toml"), &nasty).expect("write");
    for d in ["out", "early", "late", "home", "run"] {
        fs::create_dir_all(p(d)).expect("mkdir");
    }
    // archy never renders for root: the generator runs as an ordinary user, as a user manager's
    std::os::unix::fs::chown(p("out"), Some(65534), Some(65534)).expect("chown out");

    // the hook at its fixed path: an overlay on the deepest directory of that path the root has
    let hook = archy::hook_binary();
    let hook_dir = Path::new(&hook).parent().expect("hook dir");
    let mut lower = hook_dir.to_path_buf();
    while !root
        .join(lower.strip_prefix("/").expect("absolute"))
        .is_dir()
    {
        lower = lower.parent().expect("/ exists").to_path_buf();
    }
    let upper_hook = p("upper").join(Path::new(&hook).strip_prefix(&lower).expect("below lower"));
    fs::create_dir_all(upper_hook.parent().expect("parent")).expect("mkdir");
    fs::create_dir_all(p("work")).expect("mkdir");
    fs::copy(env!("CARGO_BIN_EXE_archy-hook"), &upper_hook).expect("copy hook");
    // archy's static units (archy-secret@.path, ...), which the generated ones may want, as
    // `make install` installs them
    fs::create_dir_all(p("units")).expect("mkdir");
    if let Ok(entries) = fs::read_dir(manifest_dir().join("units")) {
        for e in entries {
            let e = e.expect("entry");
            let text = fs::read_to_string(e.path()).expect("unit text");
            let text = text.replace("@LIBEXECDIR@", &hook_dir.display().to_string());
            fs::write(p("units").join(e.file_name()), text).expect("write unit");
        }
    }
    // a control unit that verify must reject, so that a silent verify cannot pass for a good one
    fs::create_dir_all(p("control")).expect("mkdir");
    fs::write(
        p("control/archy-control.service"),
        "[Service]\nExecStart=/nonexistent/archy-control\n",
    )
    .expect("write");

    let i = inside.display();
    let env =
        format!("env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME={i}/home XDG_RUNTIME_DIR={i}/run");
    let inner = format!(
        "#!/bin/sh\n\
         {env} ARCHY_ROOT={i}/tree setpriv --reuid=65534 --regid=65534 --clear-groups {i}/bin/archy-generator {i}/out {i}/early {i}/late >{i}/generator.log 2>&1\n\
         echo $? >{i}/generator.rc\n\
         cd {i}/out || exit 1\n\
         {env} SYSTEMD_UNIT_PATH={i}/out:{i}/units: systemd-analyze --user --man=no verify archy-*.service archy.target >{i}/verify.log 2>&1\n\
         echo $? >{i}/verify.rc\n\
         cd {i}/control || exit 1\n\
         {env} SYSTEMD_UNIT_PATH={i}/control: systemd-analyze --user --man=no verify archy-control.service >{i}/control.log 2>&1\n\
         echo $? >{i}/control.rc\n"
    );
    fs::write(p("inner.sh"), inner).expect("write");
    let r = root.display();
    let outer = format!(
        "set -e\n\
         mount --make-rprivate /\n\
         mount -t overlay overlay -o lowerdir={r}{lower},upperdir={h}/upper,workdir={h}/work {r}{lower}\n\
         mount -t proc proc {r}/proc\n\
         chroot {r} /bin/sh {i}/inner.sh\n",
        lower = lower.display(),
        h = host.display(),
    );
    let start = std::time::Instant::now();
    let (rc, output) =
        run(Command::new("timeout").args(["120", "unshare", "-m", "sh", "-c", &outer]));
    assert_eq!(rc, 0, "the sandboxed run failed: {output}");
    eprintln!("real quadlet + verify ran in {:?}", start.elapsed());
    let read = |rel: &str| fs::read_to_string(p(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));

    // the generator succeeded, logging the invalid app and nothing from quadlet
    let log = read("generator.log");
    assert_eq!(read("generator.rc").trim(), "0", "generator failed:\n{log}");
    assert!(
        log.contains("broken.toml") && log.contains("colour"),
        "{log}"
    );
    assert!(!log.contains("quadlet"), "quadlet complained:\n{log}");

    // quadlet produced a service for every catalog app, the nasty app and the network
    let out = p("out");
    let mut ids: Vec<String> = fs::read_dir(manifest_dir().join("catalog/apps"))
        .expect("catalog")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".toml")
                .to_string()
        })
        .collect();
    ids.sort();
    assert!(ids.len() >= 14);
    ids.push("nasty".into());
    for id in &ids {
        let service = out.join(format!("archy-{id}.service"));
        let text = fs::read_to_string(&service)
            .unwrap_or_else(|e| panic!("quadlet made no {}: {e}", service.display()));
        assert!(
            text.contains(&format!(
                "\nSourcePath={i}/out/{}/archy-{id}.container\n",
                archy::generate::SOURCE_DIR
            )),
            "{id}: not from its .container:\n{text}"
        );
        assert!(
            text.contains(&format!(" --name archy-{id} ")),
            "{id}:\n{text}"
        );
    }
    assert!(out.join("archy-network.service").is_file());
    let broken = read("out/archy-broken.service");
    assert!(
        broken.contains(&format!("ExecStart={hook} explain broken\n")),
        "{broken}"
    );
    assert_eq!(
        fs::read_link(out.join("default.target.wants/archy.target")).expect("link"),
        Path::new("../archy.target")
    );

    // systemd finds nothing wrong with any of them
    let verify = read("verify.log");
    assert_eq!(
        read("verify.rc").trim(),
        "0",
        "systemd-analyze verify failed:\n{verify}"
    );
    let unexpected: Vec<&str> = verify
        .lines()
        .filter(|l| l.contains("archy") && !KNOWN_HARMLESS.iter().any(|k| l.contains(k)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "systemd-analyze verify about our units:\n{}",
        unexpected.join("\n")
    );
    // and it does check: the control unit is refused for its missing executable
    let control = read("control.log");
    assert_ne!(
        read("control.rc").trim(),
        "0",
        "verify accepted a unit with a missing executable:\n{control}"
    );
    assert!(control.contains("/nonexistent/archy-control"), "{control}");

    // the nasty strings reach podman's command line byte for byte
    let service = read("out/archy-nasty.service");
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    let words: Vec<String> = split_words(exec)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|w| systemd_literal(w))
        .collect();
    let image = words
        .iter()
        .position(|w| w == "docker.io/library/busybox:1.37")
        .expect("image");
    assert_eq!(
        &words[image + 1..],
        items.as_slice(),
        "command items changed on the way"
    );
    let mut envs = BTreeMap::new();
    for pair in words[..image].windows(2).filter(|w| w[0] == "--env") {
        let (k, v) = pair[1].split_once('=').expect("K=V");
        envs.insert(k.to_string(), v.to_string());
    }
    for (n, want) in env_values.iter().enumerate() {
        assert_eq!(
            envs.get(&format!("V{n:02}")).map(String::as_str),
            Some(*want),
            "V{n:02}"
        );
    }
    let hc = words[..image]
        .windows(2)
        .find(|w| w[0] == "--health-cmd")
        .expect("--health-cmd");
    assert_eq!(hc[1], health);
}

/// When quadlet refuses one app's `.container` (it converts the others and exits 1), that app gets
/// a unit whose start fails with quadlet's reason, the others their services, and the generator
/// succeeds. Quadlet is the real one, from the test root, behind a wrapper that makes it refuse
/// `archy-lnd.container` the way it refuses a file (its message, its exit status): no valid
/// manifest makes today's quadlet refuse, which is what the validation is for.
#[test]
fn an_app_quadlet_refuses_fails_visibly_and_alone() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let root = match e2e_root() {
        Ok(r) => r,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let t = Tree::catalog();
    let wrapper = t.path("quadlet");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n{q} \"$@\"\nfor out; do :; done\n\
             rm -f \"$out/archy-lnd.service\"\n\
             echo 'quadlet-generator[1]: converting \"archy-lnd.container\": requested Quadlet image x was not found' >&2\n\
             exit 1\n",
            q = root.join(QUADLET).display()
        ),
    )
    .expect("write wrapper");
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::set_permissions(t.root(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = t.path("out");
    fs::create_dir_all(&out).expect("mkdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_archy-generator"));
    cmd.arg(&out)
        .env("ARCHY_ROOT", t.root())
        .env("ARCHY_LOG", "stderr")
        .env("ARCHY_QUADLET", &wrapper);
    if nix::unistd::getuid().is_root() {
        std::os::unix::fs::chown(&out, Some(65534), Some(65534)).expect("chown");
        cmd.uid(65534).gid(65534);
    }
    let run = cmd.output().expect("run the generator");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "the generator failed: {log}");
    assert!(
        log.contains("app `lnd`: quadlet refused archy-lnd.container: requested Quadlet image"),
        "{log}"
    );
    let lnd = fs::read_to_string(out.join("archy-lnd.service")).expect("lnd's failing unit");
    assert_eq!(
        values(&lnd, "ExecStart"),
        [format!("{} explain lnd", archy::hook_binary())]
    );
    assert!(
        values(&lnd, "Environment").iter().any(|e| e.starts_with(
            "\"ARCHY_QUADLET_ERROR=quadlet refused archy-lnd.container: requested Quadlet image x"
        )),
        "{lnd}"
    );
    for id in ["bitcoin-core", "bitcoin-ui", "lnd-ui"] {
        let text = fs::read_to_string(out.join(format!("archy-{id}.service"))).expect(id);
        assert!(text.contains("podman run"), "{id} lost its service");
    }
    // the failing unit says why when started: explain reads the reason from its environment
    let explain = Command::new(env!("CARGO_BIN_EXE_archy-hook"))
        .args(["explain", "lnd"])
        .env(
            "ARCHY_QUADLET_ERROR",
            "requested Quadlet image x was not found",
        )
        .env("ARCHY_LOG", "stderr")
        .output()
        .expect("explain");
    assert_eq!(explain.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&explain.stdout)
        .contains("has no service: requested Quadlet image x"));
}
