//! archy-hook as a unit runs it: what the service manager hears from a failing hook.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

/// A failing hook gives the manager its reason as STATUS= (what `systemctl status` shows), then
/// waits for the manager with BARRIER=1, and does not hang when the manager answers.
#[test]
fn a_failing_hook_tells_the_manager_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut hook = Command::new(env!("CARGO_BIN_EXE_archy-hook"))
        .args(["ensure-image", "nosuch"])
        .env("ARCHY_ROOT", dir.path())
        .env("ARCHY_LOG", "stderr")
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("NOTIFY_SOCKET", &socket_path)
        .spawn()
        .expect("spawn archy-hook");
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a status message");
    let status = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert_eq!(
        status,
        "STATUS=archy-hook ensure-image: no manifest for app `nosuch`\n"
    );
    // the barrier carries a pipe's write end: receiving it without taking it closes it, which
    // is the manager's answer
    let n = socket.recv(&mut buf).expect("a barrier");
    assert_eq!(&buf[..n], b"BARRIER=1\n");
    let exit = hook.wait().expect("wait");
    assert_eq!(exit.code(), Some(1));
}

/// `rotate` of a secret the shipped catalog's database keeps (rotate = false) is refused, naming
/// the apps that keep it, and leaves the secret as it was; an ordinary secret is rotated.
#[test]
fn rotate_refuses_a_secret_a_database_keeps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let share = root.join("usr/share/archipelago");
    std::fs::create_dir_all(&share).expect("mkdir");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["apps", "templates"] {
        let status = Command::new("cp")
            .arg("-r")
            .arg(repo.join("catalog").join(sub))
            .arg(&share)
            .status()
            .expect("cp");
        assert!(status.success());
    }
    std::fs::create_dir_all(share.join("grants.d")).expect("mkdir");
    std::fs::copy(
        repo.join("catalog/grants.toml"),
        share.join("grants.d/archy-catalog.toml"),
    )
    .expect("the catalog's grants");
    let state = dir.path().join("state");
    let hook = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_archy-hook"))
            .args(args)
            .env("ARCHY_ROOT", &root)
            .env("ARCHY_LOG", "stderr")
            .env("XDG_STATE_HOME", &state)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .expect("archy-hook")
    };
    assert!(hook(&["secrets", "mempool-mariadb"]).status.success());
    let file = state.join("archipelago/secrets/mempool-db/password");
    let before = std::fs::read(&file).expect("the secret");
    let out = hook(&["rotate", "mempool-db"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret `mempool-db` cannot be rotated")
            && err.contains("mempool-backend, mempool-mariadb keep"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).expect("the secret"), before);
    // bitcoind's RPC password is the apps' to follow: rotated
    assert!(hook(&["secrets", "bitcoin-core"]).status.success());
    let rpc = state.join("archipelago/secrets/bitcoind-rpc/password");
    let old = std::fs::read(&rpc).expect("rpc secret");
    let out = hook(&["rotate", "bitcoind-rpc"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(std::fs::read(&rpc).expect("rpc secret"), old);
}

/// `volumes` makes an app's volume directories, and refuses, naming the volume, the path and
/// the app whose container wrote it, a link planted in the directory another app shares;
/// nothing is made where the link points.
#[test]
fn volumes_refuses_a_link_in_a_shared_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let apps = root.join("usr/share/archipelago/apps");
    std::fs::create_dir_all(&apps).expect("mkdir");
    let data = dir.path().join("data");
    let node = root.join("etc/archipelago/node.toml");
    std::fs::create_dir_all(node.parent().expect("a dir")).expect("mkdir");
    std::fs::write(&node, format!("data_dir = \"{}\"\n", data.display())).expect("node.toml");
    let image = "[image]\nref = \"docker.io/library/busybox:1.37\"\n";
    std::fs::write(
        apps.join("sharer.toml"),
        format!("[app]\nid = \"sharer\"\nshares = [\"pub\"]\n{image}[[container.volumes]]\ntarget = \"/d\"\n"),
    )
    .expect("manifest");
    std::fs::write(
        apps.join("taker.toml"),
        format!(
            "[app]\nid = \"taker\"\n{image}[dependencies]\nrequires = [\"sharer\"]\n\
             [[container.volumes]]\ntarget = \"/own\"\nsubpath = \"a/b\"\n\
             [[container.volumes]]\napp = \"sharer\"\nsubpath = \"pub/x\"\ntarget = \"/shared\"\n"
        ),
    )
    .expect("manifest");
    let hook = |id: &str| {
        Command::new(env!("CARGO_BIN_EXE_archy-hook"))
            .args(["volumes", id])
            .env("ARCHY_ROOT", &root)
            .env("ARCHY_LOG", "stderr")
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env_remove("NOTIFY_SOCKET")
            .output()
            .expect("archy-hook")
    };
    let out = hook("sharer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("sharer").is_dir());
    // the sharer's container plants a link to the service user's secrets
    let secrets = dir.path().join("state/archipelago/secrets");
    std::fs::create_dir_all(&secrets).expect("mkdir");
    std::os::unix::fs::symlink(&secrets, data.join("sharer/pub")).expect("symlink");
    let out = hook("taker");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let link = data.join("sharer/pub");
    assert!(
        err.contains("volume `/shared` of app `taker`")
            && err.contains("app `sharer`'s container writes there")
            && err.contains(&format!("{} is a symbolic link", link.display())),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&secrets).expect("ls").count(), 0);
    // its own volume, before the shared one, was made
    assert!(data.join("taker/a/b").is_dir());
}
