//! App containment (a manifest gets only what the admin granted; a newcomer never displaces an
//! installed app), one test per way a third-party manifest could reach beyond itself. Each asserts
//! that the newcomer is refused with an error naming its file, key and the app it collides with,
//! and that the installed apps' units are byte-identical to those rendered without it.

use crate::common::*;
use std::collections::BTreeMap;

/// A third-party manifest for `id`, with `app` keys added to its [app] table and `rest` after.
fn third_party(id: &str, app: &str, rest: &str) -> String {
    format!(
        "[app]\nid = \"{id}\"\n{app}\n[image]\nref = \"docker.io/library/busybox:1.37\"\n{rest}"
    )
}

/// The shipped catalog, every app installed as on a running node.
fn node() -> Tree {
    let t = Tree::catalog();
    for id in t.catalog_of().valid.keys() {
        t.install(id);
    }
    t
}

/// Every rendered file but the ones naming `newcomer` and the target (which wants it, to show its
/// failure): what the installed apps run.
fn installed_units(t: &Tree, newcomer: &str) -> BTreeMap<String, String> {
    let r = t.render();
    r.sources
        .iter()
        .chain(&r.units)
        .filter(|(n, _)| !n.contains(newcomer) && n.as_str() != "archy.target")
        .cloned()
        .collect()
}

/// Adds `text` as vendor manifest `id` to a node and asserts it alone is refused, the installed
/// apps' units unchanged; returns its errors.
fn refused_newcomer(t: &Tree, id: &str, text: &str) -> Vec<String> {
    let before = installed_units(t, id);
    let valid_before: Vec<String> = t.catalog_of().valid.keys().cloned().collect();
    t.vendor(id, text);
    let c = t.catalog_of();
    assert_eq!(
        c.invalid.keys().collect::<Vec<_>>(),
        [id],
        "only the newcomer is refused"
    );
    assert_eq!(c.valid.keys().cloned().collect::<Vec<_>>(), valid_before);
    assert_eq!(
        installed_units(t, id),
        before,
        "an installed app's unit changed"
    );
    errors_of(&c, id)
}

/// Asserts one of `errs` names `file` and `key` and contains every one of `needles`.
fn names(errs: &[String], file: &std::path::Path, key: &str, needles: &[&str]) {
    let prefix = file.display().to_string();
    assert!(
        errs.iter().any(|e| e.starts_with(&prefix)
            && e.contains(&format!(": {key}: "))
            && needles.iter().all(|n| e.contains(n))),
        "no error of {prefix} at {key} with {needles:?}: {errs:#?}"
    );
}

#[test]
fn the_host_network_needs_a_grant() {
    let t = node();
    let text = third_party("tool", "", "[container]\nnetwork = \"host\"\n");
    let errs = refused_newcomer(&t, "tool", &text);
    let f = t.path(&format!("{VENDOR}/tool.toml"));
    names(
        &errs,
        &f,
        "[container] network",
        &[
            "not granted to `tool`",
            "host_network = true",
            "[grants.tool]",
        ],
    );
    t.node("[grants.tool]\nhost_network = true\n");
    let r = t.render();
    assert_eq!(
        values(file(&r, "archy-tool.container"), "Network"),
        ["host"]
    );
}

#[test]
fn a_capability_needs_a_grant_and_all_of_them_is_never_one() {
    let t = node();
    let text = third_party(
        "tool",
        "",
        "[container]\nadd_capabilities = [\"NET_ADMIN\", \"CAP_NET_RAW\"]\n",
    );
    let errs = refused_newcomer(&t, "tool", &text);
    let f = t.path(&format!("{VENDOR}/tool.toml"));
    names(
        &errs,
        &f,
        "[container] add_capabilities",
        &["`NET_ADMIN`", "capabilities = [\"NET_ADMIN\"]"],
    );
    names(&errs, &f, "[container] add_capabilities", &["`NET_RAW`"]);
    // a grant of one is not a grant of the other
    t.grants("tool", "[tool]\ncapabilities = [\"NET_ADMIN\"]\n");
    let errs = errors_of(&t.catalog_of(), "tool");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    names(&errs, &f, "[container] add_capabilities", &["`NET_RAW`"]);
    t.grants(
        "tool",
        "[tool]\ncapabilities = [\"NET_ADMIN\", \"NET_RAW\"]\n",
    );
    let r = t.render();
    assert_eq!(
        values(file(&r, "archy-tool.container"), "AddCapability"),
        ["NET_ADMIN", "NET_RAW"]
    );
    // `ALL`, in any spelling podman takes, is refused whatever is granted
    for every in ["ALL", "CAP_ALL"] {
        t.grants("tool", "[tool]\ncapabilities = [\"NET_ADMIN\"]\n");
        t.vendor(
            "tool",
            third_party(
                "tool",
                "",
                &format!("[container]\nadd_capabilities = [\"{every}\"]\n"),
            ),
        );
        let errs = errors_of(&t.catalog_of(), "tool");
        assert!(
            errs.iter().any(|e| e.contains("every capability")),
            "{errs:#?}"
        );
    }
    // nor can a grants file grant it
    t.grants("tool", "[tool]\ncapabilities = [\"ALL\"]\n");
    t.vendor("tool", text);
    let errs = errors_of(&t.catalog_of(), "tool");
    assert!(
        errs.iter()
            .any(|e| e.contains("a grants file is unreadable") && e.contains("every capability")),
        "{errs:#?}"
    );
}

#[test]
fn a_user_namespace_other_than_keep_id_needs_a_grant() {
    let t = node();
    for mode in [
        "host",
        "auto",
        "container:archy-bitcoin-core",
        "ns:/proc/1/ns/user",
    ] {
        let text = third_party("tool", "", &format!("[container]\nuserns = \"{mode}\"\n"));
        let errs = refused_newcomer(&t, "tool", &text);
        let f = t.path(&format!("{VENDOR}/tool.toml"));
        names(
            &errs,
            &f,
            "[container] userns",
            &[&format!("`{mode}`"), &format!("userns = [\"{mode}\"]")],
        );
        std::fs::remove_file(&f).unwrap();
    }
    // keep-id maps the service user to one uid, as `user` does: archy's default kind
    t.vendor(
        "tool",
        third_party(
            "tool",
            "",
            "[container]\nuserns = \"keep-id:uid=70,gid=70\"\n",
        ),
    );
    assert!(t.catalog_of().valid.contains_key("tool"));
    t.vendor(
        "tool",
        third_party("tool", "", "[container]\nuserns = \"host\"\n"),
    );
    t.node("[grants.tool]\nuserns = [\"host\"]\n");
    assert!(t.catalog_of().valid.contains_key("tool"));
}

#[test]
fn a_low_or_out_of_range_host_port_needs_a_grant() {
    let t = node();
    let text = third_party(
        "web",
        "",
        "[container]\nports = [{ host = 80, container = 8080 }]\n",
    );
    let errs = refused_newcomer(&t, "web", &text);
    let f = t.path(&format!("{VENDOR}/web.toml"));
    names(
        &errs,
        &f,
        "[container] ports",
        &["host port 80", "ports = [80]"],
    );
    t.node("[grants.web]\nports = [80]\n");
    assert!(t.catalog_of().valid.contains_key("web"));
    // a narrower range: a port outside it needs a grant too, even for the catalog's apps
    t.node("port_range = \"20000-30000\"\n[grants.web]\nports = [80]\n");
    let c = t.catalog_of();
    assert!(c.valid.contains_key("web"));
    names(
        &errors_of(&c, "lnd"),
        &t.path(&format!("{VENDOR}/lnd.toml")),
        "[container] ports",
        &["host port 9735", "port_range 20000-30000"],
    );
}

#[test]
fn a_newcomer_cannot_receive_an_installed_apps_secret() {
    let t = node();
    let text = third_party(
        "aaa-spy",
        "",
        "[secrets]\nbitcoind-rpc = \"rpcauth\"\n[[container.volumes]]\nfrom = \"secrets\"\nsubpath = \"bitcoind-rpc\"\ntarget = \"/rpc\"\n",
    );
    let errs = refused_newcomer(&t, "aaa-spy", &text);
    let f = t.path(&format!("{VENDOR}/aaa-spy.toml"));
    names(
        &errs,
        &f,
        "[secrets] bitcoind-rpc",
        &[
            "belongs to `bitcoin-core`",
            "secrets = [\"bitcoind-rpc\"]",
            "[grants.aaa-spy]",
        ],
    );
    // granted by the admin, it receives it
    t.grants("spy", "[aaa-spy]\nsecrets = [\"bitcoind-rpc\"]\n");
    assert!(t.catalog_of().valid.contains_key("aaa-spy"));
}

#[test]
fn a_secrets_kind_is_fixed_by_its_owner() {
    let t = node();
    // granted the secret, but declaring it as another kind (it would be rewritten as a password)
    t.grants("spy", "[aaa-spy]\nsecrets = [\"bitcoind-rpc\"]\n");
    let text = third_party("aaa-spy", "", "[secrets]\nbitcoind-rpc = \"password\"\n");
    let errs = refused_newcomer(&t, "aaa-spy", &text);
    let f = t.path(&format!("{VENDOR}/aaa-spy.toml"));
    names(
        &errs,
        &f,
        "[secrets] bitcoind-rpc",
        &["fixed by `bitcoin-core`", "`rpcauth`"],
    );
    // a newcomer sorting first and declaring lnd's wallet password with another kind is refused,
    // not lnd
    std::fs::remove_file(&f).unwrap();
    let text = third_party("aaa-wallet", "", "[secrets]\nlnd-wallet = \"rpcauth\"\n");
    let errs = refused_newcomer(&t, "aaa-wallet", &text);
    names(
        &errs,
        &t.path(&format!("{VENDOR}/aaa-wallet.toml")),
        "[secrets] lnd-wallet",
        &["belongs to `lnd`"],
    );
}

#[test]
fn a_newcomer_cannot_take_an_installed_apps_alias_or_name() {
    let t = node();
    let text = third_party(
        "aaa-fake",
        "",
        "[container]\nnetwork_aliases = [\"bitcoind\"]\n",
    );
    let errs = refused_newcomer(&t, "aaa-fake", &text);
    names(
        &errs,
        &t.path(&format!("{VENDOR}/aaa-fake.toml")),
        "[container] network_aliases",
        &["`bitcoind` is already a name of `bitcoin-core`"],
    );
    let text = third_party(
        "aaa-fake",
        "",
        "[container]\nnetwork_aliases = [\"archy-lnd\"]\n",
    );
    std::fs::remove_file(t.path(&format!("{VENDOR}/aaa-fake.toml"))).unwrap();
    let errs = refused_newcomer(&t, "aaa-fake", &text);
    assert!(
        errs.iter()
            .any(|e| e.contains("`archy-lnd` is already a name of `lnd`")),
        "{errs:#?}"
    );
}

#[test]
fn a_newcomer_cannot_publish_an_installed_apps_port() {
    let t = node();
    let text = third_party(
        "aaa-port",
        "",
        "[container]\nports = [{ host = 9735, container = 9735 }]\n",
    );
    let errs = refused_newcomer(&t, "aaa-port", &text);
    names(
        &errs,
        &t.path(&format!("{VENDOR}/aaa-port.toml")),
        "[container] ports",
        &["9735/tcp is already published by `lnd`"],
    );
}

#[test]
fn a_newcomer_providing_an_installed_name_is_refused_unless_the_admin_chooses_it() {
    // a knots node: bitcoin-core masked, so the choice of `bitcoind` is open by default rules
    let t = node();
    t.node("[providers]\nbitcoind = \"bitcoin-knots\"\n");
    std::os::unix::fs::symlink("/dev/null", t.path(&format!("{ADMIN}/bitcoin-core.toml")))
        .unwrap_or_else(|_| {
            std::fs::create_dir_all(t.path(ADMIN)).unwrap();
            std::os::unix::fs::symlink("/dev/null", t.path(&format!("{ADMIN}/bitcoin-core.toml")))
                .unwrap();
        });
    let text = third_party("aaa-node", "provides = [\"bitcoind\"]", "");
    let errs = refused_newcomer(&t, "aaa-node", &text);
    names(
        &errs,
        &t.path(&format!("{VENDOR}/aaa-node.toml")),
        "[app] provides",
        &[
            "provided by installed app `bitcoin-knots`",
            "bitcoind = \"aaa-node\"",
        ],
    );
    let c = t.catalog_of();
    assert!(c.valid["lnd"]
        .links
        .wants
        .contains(&"bitcoin-knots".to_string()));
    // the admin's choice is the one way in
    t.node("[providers]\nbitcoind = \"aaa-node\"\n");
    let c = t.catalog_of();
    assert!(
        c.valid.contains_key("aaa-node"),
        "{:?}",
        c.invalid.get("aaa-node")
    );
    assert!(c.valid["lnd"].links.wants.contains(&"aaa-node".to_string()));
}

#[test]
fn a_newcomer_cannot_put_conflicts_on_an_installed_app() {
    let t = node();
    let text = third_party("aaa-stop", "conflicts = [\"lnd\", \"bitcoind\"]", "");
    let errs = refused_newcomer(&t, "aaa-stop", &text);
    let f = t.path(&format!("{VENDOR}/aaa-stop.toml"));
    names(
        &errs,
        &f,
        "[app] conflicts",
        &["`lnd` is installed app `lnd`", "cannot stop"],
    );
    names(
        &errs,
        &f,
        "[app] conflicts",
        &["`bitcoind` is installed app `bitcoin-core`"],
    );
    let r = t.render();
    assert!(values(file(&r, "archy-lnd.container"), "Conflicts").is_empty());
}

#[test]
fn a_newcomer_closing_a_dependency_cycle_is_refused_alone() {
    let t = Tree::new();
    // installed as a package's apps are: named in a vendor grants file
    t.write("usr/share/archipelago/grants.d/pkg.toml", "[base]\n[lib]\n");
    t.vendor(
        "base",
        third_party("base", "", "[dependencies]\nafter = [\"addon\"]\n"),
    );
    t.vendor(
        "lib",
        third_party("lib", "", "[dependencies]\nrequires = [\"base\"]\n"),
    );
    let text = third_party("addon", "", "[dependencies]\nrequires = [\"lib\"]\n");
    let errs = refused_newcomer(&t, "addon", &text);
    names(
        &errs,
        &t.path(&format!("{VENDOR}/addon.toml")),
        "[dependencies]",
        &["dependency cycle: addon → lib → base → addon"],
    );
    // a cycle among installed apps alone still refuses them all
    t.vendor(
        "base",
        third_party("base", "", "[dependencies]\nafter = [\"lib\"]\n"),
    );
    let c = t.catalog_of();
    assert_eq!(c.invalid.keys().collect::<Vec<_>>(), ["base", "lib"]);
    assert!(c.valid.contains_key("addon"));
}

#[test]
fn reserved_ids_cover_archys_state_and_derived_unit_names() {
    let t = node();
    for id in [
        "last-good",
        "secrets",
        "backups",
        "lnd-backup-channels",
        "x-init-wallet",
    ] {
        let text = third_party(id, "", "");
        let errs = refused_newcomer(&t, id, &text);
        names(
            &errs,
            &t.path(&format!("{VENDOR}/{id}.toml")),
            "[app] id",
            &[&format!("`{id}`")],
        );
        std::fs::remove_file(t.path(&format!("{VENDOR}/{id}.toml"))).unwrap();
    }
}

#[test]
fn the_catalog_needs_only_what_its_package_grants() {
    let t = Tree::catalog();
    let c = t.catalog_of();
    assert!(c.invalid.is_empty(), "{:#?}", c.invalid);
    // without its grants file, the apps that log in with another app's secret are refused; so is
    // mempool-mariadb, whose database password mempool-backend (first by id) now owns
    std::fs::remove_file(t.path(GRANTS)).unwrap();
    let c = t.catalog_of();
    let refused: Vec<&String> = c.invalid.keys().collect();
    assert_eq!(
        refused,
        [
            "bitcoin-ui",
            "btcpayserver",
            "electrumx",
            "fedimint",
            "lnd",
            "mempool-backend",
            "mempool-mariadb",
            "nbxplorer"
        ]
    );
    let lnd = t.path(&format!("{VENDOR}/lnd.toml"));
    names(
        &errors_of(&c, "lnd"),
        &lnd,
        "[secrets] bitcoind-rpc",
        &["belongs to `bitcoin-core`"],
    );
}

#[test]
fn root_is_never_the_service_user() {
    let t = node();
    for user in ["root", "0"] {
        let f = t.node(&format!("user = \"{user}\"\n"));
        let c = t.catalog_of();
        assert!(c.valid.is_empty(), "an app would run as root");
        names(
            &errors_of(&c, "lnd"),
            &f,
            "user",
            &["is root", "never runs apps as root"],
        );
    }
}

/// Run as root without a node.toml, the generator writes nothing (as another user it would render
/// every app: the same run as `nobody` is the control).
#[test]
fn the_generator_renders_nothing_for_root() {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::getuid().is_root() {
        eprintln!("SKIPPED: needs to run as root (CI does)");
        return;
    }
    let t = Tree::catalog();
    let run = |uid: Option<u32>| -> usize {
        let out = tempfile::tempdir().expect("out");
        std::os::unix::fs::chown(out.path(), Some(65534), Some(65534)).expect("chown");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_archy-generator"));
        cmd.arg(out.path())
            .env("ARCHY_ROOT", t.root())
            .env("ARCHY_LOG", "stderr")
            .env("ARCHY_QUADLET", "/nonexistent/quadlet");
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        let _ = cmd.output().expect("run the generator");
        std::fs::read_dir(out.path()).expect("out").count()
    };
    // the tree must be readable by nobody
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(
        run(Some(65534)) > 0,
        "the control run as nobody wrote nothing"
    );
    assert_eq!(run(None), 0, "the generator wrote units for root");
}

/// What quadlet would change on its way to podman is refused, rather than run changed: a health
/// check losing its closing quote, one podman takes for "no check" while the unit waits for one,
/// and an image reference quadlet takes for one of its own units (the app would get no unit).
#[test]
fn what_quadlet_would_change_is_refused() {
    let t = node();
    for (cmd, needle) in [
        (r#"echo \"up\""#, "quadlet strips"),
        (r#"\"/bin/check\" --fast"#, "quadlet strips"),
        ("none", "disable the health check"),
        (" NONE ", "disable the health check"),
    ] {
        let text = third_party("probe", "", &format!("[health]\ncmd = \"{cmd}\"\n"));
        let errs = refused_newcomer(&t, "probe", &text);
        let f = t.path(&format!("{VENDOR}/probe.toml"));
        names(&errs, &f, "[health] cmd", &[needle]);
        std::fs::remove_file(&f).unwrap();
    }
    // quotes inside are fine
    t.vendor(
        "probe",
        third_party(
            "probe",
            "",
            "[health]\ncmd = 'test \"$(cat /s)\" = ok || exit 1'\n",
        ),
    );
    assert!(t.catalog_of().valid.contains_key("probe"));
    std::fs::remove_file(t.path(&format!("{VENDOR}/probe.toml"))).unwrap();
    for image in ["local/app.image", "app.build"] {
        let text = format!("[app]\nid = \"probe\"\n[image]\nref = \"{image}\"\n");
        let errs = refused_newcomer(&t, "probe", &text);
        assert!(
            errs.iter()
                .any(|e| e.contains("quadlet takes for one of its units")),
            "{errs:#?}"
        );
        std::fs::remove_file(t.path(&format!("{VENDOR}/probe.toml"))).unwrap();
    }
}

/// Past `MAX_APPS` manifests the set is refused as a whole, each app naming the bound: one
/// package of tiny manifests cannot make a reload outlast the manager.
#[test]
fn too_many_manifests_are_refused_as_a_whole() {
    let t = Tree::new();
    let dir = t.path(VENDOR);
    std::fs::create_dir_all(&dir).unwrap();
    let n = archy::generate::MAX_APPS + 1;
    for i in 0..n {
        std::fs::write(dir.join(format!("a{i}.toml")), "").unwrap();
    }
    let c = t.catalog_of();
    assert!(c.valid.is_empty());
    assert_eq!(c.invalid.len(), n);
    let errs = errors_of(&c, "a7");
    assert!(
        errs.iter()
            .any(|e| e.contains(&format!("{n} app manifests are more than the"))),
        "{errs:#?}"
    );
    // at the bound, each app is judged on its own
    std::fs::remove_file(dir.join("a0.toml")).unwrap();
    let errs = errors_of(&t.catalog_of(), "a7");
    assert!(
        !errs.iter().any(|e| e.contains("more than the")),
        "{errs:#?}"
    );
}
