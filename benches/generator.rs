//! `make bench`: the generator's wall time on the shipped catalog and on 1,000 synthetic apps,
//! beside podman's quadlet alone on the same rendered `.container` files, and the ratio; plus the
//! median time of `archy-hook render` for a companion (it runs at every start of one).
//!
//! Quadlet comes from the end-to-end test root (Debian 13, podman 5.4); both programs run there
//! through `chroot`, so they see the same files and pay the same exec overhead. Without that root
//! (or without root privileges) only archy's own times are printed, and the reason.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 15;

fn main() {
    let e2e_root = PathBuf::from(
        std::env::var("ARCHY_E2E_ROOT").unwrap_or_else(|_| "/var/cache/archy-e2e/trixie".into()),
    );
    let quadlet_in_root = "/usr/libexec/podman/quadlet";
    let have_quadlet = e2e_root
        .join(quadlet_in_root.trim_start_matches('/'))
        .exists()
        && nix::unistd::geteuid().is_root();
    let work_parent = if have_quadlet {
        e2e_root.join("tmp")
    } else {
        std::env::temp_dir()
    };
    let work = tempfile::Builder::new()
        .prefix("archy-bench.")
        .tempdir_in(&work_parent)
        .expect("temp dir");
    let generator = work.path().join("archy-generator");
    fs::copy(env!("CARGO_BIN_EXE_archy-generator"), &generator).expect("copy generator");

    println!("archy generator benchmark: median of {RUNS} runs each");
    if !have_quadlet {
        println!(
            "NOTE: quadlet not available ({} missing or not root): archy's own time only, no ratio",
            e2e_root
                .join(quadlet_in_root.trim_start_matches('/'))
                .display()
        );
    }
    let catalog = work.path().join("catalog");
    copy_catalog(&catalog);
    let synthetic = work.path().join("synthetic");
    write_synthetic(&synthetic, 1000);

    println!(
        "{:<22} {:>12} {:>14} {:>8}",
        "input", "archy total", "quadlet alone", "ratio"
    );
    for (name, tree) in [
        ("catalog (15 apps)", &catalog),
        ("synthetic (1000 apps)", &synthetic),
    ] {
        let inside = |p: &Path| -> PathBuf {
            if have_quadlet {
                Path::new("/").join(p.strip_prefix(&e2e_root).expect("inside root"))
            } else {
                p.to_path_buf()
            }
        };
        let out = work.path().join("out");
        let run_ours = || {
            let _ = fs::remove_dir_all(&out);
            fs::create_dir_all(&out).expect("out dir");
            let mut cmd = in_root(have_quadlet, &e2e_root, &inside(&generator));
            cmd.arg(inside(&out))
                .env("ARCHY_ROOT", inside(tree))
                .env("ARCHY_LOG", "stderr");
            if have_quadlet {
                cmd.env("ARCHY_QUADLET", quadlet_in_root);
            } else {
                cmd.env("ARCHY_QUADLET", "/nonexistent/quadlet");
            }
            let t = Instant::now();
            let status = cmd.output().expect("run generator");
            let took = t.elapsed();
            // without quadlet the generator reports it as an error after writing the sources
            assert!(
                status.status.success() || !have_quadlet,
                "generator failed: {:?}",
                status
            );
            took
        };
        let ours = median((0..RUNS).map(|_| run_ours()).collect());
        let apps = fs::read_dir(out.join("archy-quadlet"))
            .map(|d| d.count())
            .unwrap_or(0);
        let services = fs::read_dir(&out)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".service"))
                    .count()
            })
            .unwrap_or(0);
        let mut line = format!("{name:<22} {:>12}", fmt(ours));
        if have_quadlet {
            assert!(
                services + 1 >= apps,
                "quadlet produced {services} services for {apps} sources"
            );
            let src = out.join("archy-quadlet");
            let qout = work.path().join("qout");
            let run_quadlet = || {
                let _ = fs::remove_dir_all(&qout);
                fs::create_dir_all(&qout).expect("qout");
                let mut cmd = in_root(true, &e2e_root, Path::new(quadlet_in_root));
                cmd.env("QUADLET_UNIT_DIRS", inside(&src))
                    .args(["-user", "-no-kmsg-log"])
                    .arg(inside(&qout));
                let t = Instant::now();
                let status = cmd.output().expect("run quadlet");
                let took = t.elapsed();
                assert!(status.status.success(), "quadlet failed: {status:?}");
                took
            };
            let q = median((0..RUNS).map(|_| run_quadlet()).collect());
            let _ = write!(
                line,
                " {:>14} {:>7.2}x",
                fmt(q),
                ours.as_secs_f64() / q.as_secs_f64()
            );
        } else {
            let _ = write!(line, " {:>14} {:>8}", "-", "-");
        }
        println!("{line}   ({apps} sources, {services} services)");
    }
    println!("target: archy total at most 1.25x quadlet alone at 1000 apps");
    bench_render();
}

fn in_root(chroot: bool, root: &Path, program: &Path) -> Command {
    if chroot {
        let mut c = Command::new("chroot");
        c.arg(root).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn copy_catalog(root: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let share = root.join("usr/share/archipelago");
    copy_dir(&repo.join("apps"), &share.join("apps"));
    copy_dir(&repo.join("templates"), &share.join("templates"));
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// `n` apps shaped like real ones: each requires up to three earlier apps, publishes a port, has
/// environment, volumes and a health check.
fn write_synthetic(root: &Path, n: usize) {
    let dir = root.join("usr/share/archipelago/apps");
    fs::create_dir_all(&dir).expect("mkdir");
    for i in 0..n {
        let deps: Vec<String> = [1, 7, 31]
            .iter()
            .filter(|d| i >= **d)
            .map(|d| format!("\"app-{:04}\"", i - d))
            .collect();
        let text = format!(
            r#"[app]
id = "app-{i:04}"
name = "Synthetic app {i}"

[image]
ref = "docker.io/example/app:{i}"

[container]
command = ["serve", "--port", "8080", "--name", "app {i}"]
environment = {{ APP_ID = "{i}", LOG = "info", URL = "http://app-{i:04}:8080/" }}
ports = [{{ host = {port}, container = 8080 }}]

[[container.volumes]]
from = "data"
target = "/data"

[dependencies]
requires = [{deps}]

[health]
cmd = "wget -q -O /dev/null http://127.0.0.1:8080/health"
interval = "30s"
"#,
            port = 20000 + i,
            deps = deps.join(", ")
        );
        fs::write(dir.join(format!("app-{i:04}.toml")), text).expect("write");
    }
}

/// The render hook's own work for bitcoin-ui (read manifests, read the secret, render, compare).
fn bench_render() {
    let tree = tempfile::tempdir().expect("tmp");
    copy_catalog(tree.path());
    let state = tempfile::tempdir().expect("tmp");
    let paths = archy::paths::Paths::new(Some(tree.path().to_path_buf()));
    let (node, catalog) = archy::generate::load_catalog(&paths);
    let node = node.expect("node");
    let app = &catalog.valid["bitcoin-ui"].manifest;
    archy::secrets::ensure(
        &state.path().join("archipelago"),
        "bitcoind-rpc",
        archy::manifest::SecretKind::Rpcauth,
    )
    .expect("secret");
    let hook = env!("CARGO_BIN_EXE_archy-hook");
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let out = Command::new(hook)
            .args(["render", "bitcoin-ui"])
            .env("ARCHY_ROOT", tree.path())
            .env("XDG_STATE_HOME", state.path())
            .output()
            .expect("run hook");
        times.push(t.elapsed());
        assert!(out.status.success(), "{out:?}");
    }
    let mut lib = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        archy::config::render(&paths, &state.path().join("archipelago"), app, &node)
            .expect("render");
        lib.push(t.elapsed());
    }
    println!(
        "archy-hook render bitcoin-ui: median {} per run (process), {:.0} µs of it rendering",
        fmt(median(times)),
        median(lib).as_secs_f64() * 1e6
    );
}
