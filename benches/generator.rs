//! `make bench`: the generator's wall time on the shipped catalog and on 1,000 synthetic apps,
//! beside podman's quadlet alone on the same rendered `.container` files, and the ratio; plus the
//! median time of `archy-hook render` for a companion (it runs at every start of one).
//!
//! Quadlet is `$ARCHY_QUADLET`, else podman's on this machine, else the one in the end-to-end test
//! root (Debian 13, podman 5.4), run directly. Output goes to a tmpfs (/dev/shm) where there is
//! one, as a real generator's does (/run/user/<uid>/systemd/generator). Without any quadlet only
//! archy's own times are printed, and why.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 31;

/// archy never renders for root: run as root (CI, a test bed), the generator runs as `nobody`,
/// owning its output dir, as a user manager's generator would.
fn as_ordinary_user(cmd: &mut Command, out: &Path) {
    use std::os::unix::process::CommandExt;
    if nix::unistd::getuid().is_root() {
        std::os::unix::fs::chown(out, Some(65534), Some(65534)).expect("chown output dir");
        cmd.uid(65534).gid(65534);
    }
}

fn find_quadlet() -> Option<PathBuf> {
    let e2e =
        std::env::var("ARCHY_E2E_ROOT").unwrap_or_else(|_| "/var/cache/archy-e2e/trixie".into());
    let candidates = [
        std::env::var_os("ARCHY_QUADLET").map(PathBuf::from),
        Some(PathBuf::from("/usr/libexec/podman/quadlet")),
        Some(Path::new(&e2e).join("usr/libexec/podman/quadlet")),
    ];
    candidates.into_iter().flatten().find(|q| {
        Command::new(q)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(PEAK_OF) {
        return peak_of(&args[2], Path::new(&args[3]), Path::new(&args[4]));
    }
    let quadlet = find_quadlet();
    let shm = Path::new("/dev/shm");
    let parent = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let work = tempfile::Builder::new()
        .prefix("archy-bench.")
        .tempdir_in(&parent)
        .expect("temp dir");
    // readable by the ordinary user the generator runs as (see `as_ordinary_user`)
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let generator = env!("CARGO_BIN_EXE_archy-generator");

    println!(
        "archy generator benchmark: median of {RUNS} runs each, output in {}",
        parent.display()
    );
    match &quadlet {
        Some(q) => println!("quadlet: {}", q.display()),
        None => println!(
            "NOTE: no working quadlet found (set ARCHY_QUADLET): archy's own time only, no ratio"
        ),
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
        let out = work.path().join("out");
        let run_ours = || {
            let _ = fs::remove_dir_all(&out);
            fs::create_dir_all(&out).expect("out dir");
            let mut cmd = Command::new(generator);
            as_ordinary_user(&mut cmd, &out);
            cmd.arg(&out)
                .env("ARCHY_ROOT", tree)
                .env("ARCHY_LOG", "stderr");
            cmd.env(
                "ARCHY_QUADLET",
                quadlet
                    .as_deref()
                    .unwrap_or(Path::new("/nonexistent/quadlet")),
            );
            let t = Instant::now();
            let status = cmd.output().expect("run generator");
            let took = t.elapsed();
            // without quadlet the generator reports it as an error after writing the sources
            assert!(
                status.status.success() || quadlet.is_none(),
                "generator failed: {status:?}"
            );
            took
        };
        // interleaved, so that both see the same machine load
        let src = out.join("archy-quadlet");
        let qout = work.path().join("qout");
        let run_quadlet = |q: &Path| {
            let _ = fs::remove_dir_all(&qout);
            fs::create_dir_all(&qout).expect("qout");
            let mut cmd = Command::new(q);
            cmd.env("QUADLET_UNIT_DIRS", &src)
                .args(["-user", "-no-kmsg-log"])
                .arg(&qout);
            let t = Instant::now();
            let status = cmd.output().expect("run quadlet");
            let took = t.elapsed();
            assert!(status.status.success(), "quadlet failed: {status:?}");
            took
        };
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            ours.push(run_ours());
            if let Some(q) = &quadlet {
                theirs.push(run_quadlet(q));
            }
        }
        let ours = median(ours);
        let sources = fs::read_dir(&src).map(|d| d.count()).unwrap_or(0);
        let services = fs::read_dir(&out)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".service"))
                    .count()
            })
            .unwrap_or(0);
        let mut line = format!("{name:<22} {:>12}", fmt(ours));
        if quadlet.is_some() {
            assert!(
                services >= sources,
                "quadlet produced {services} services for {sources} sources"
            );
            let qt = median(theirs);
            let _ = write!(
                line,
                " {:>14} {:>7.2}x",
                fmt(qt),
                ours.as_secs_f64() / qt.as_secs_f64()
            );
        } else {
            let _ = write!(line, " {:>14} {:>8}", "-", "-");
        }
        println!("{line}   ({sources} sources, {services} services)");
    }
    println!("target: archy total at most 1.25x quadlet alone at 1000 apps");
    bench_shapes(generator, work.path());
    bench_render();
}

/// The shapes whose cost once grew with the square of their size, at 10,000 apps each.
const SHAPES: &[&str] = &["flat", "chain", "ring", "one provided name"];
const SHAPE_APPS: usize = 10_000;
/// What a reload may take for archy's own work at that size.
const SHAPE_BUDGET: Duration = Duration::from_secs(5);
const PEAK_OF: &str = "--peak-of";

/// The generator's wall time and peak memory on each shape, archy's own work only (its sources
/// written; quadlet, linear in files, is left out). Each run is measured in a child of this
/// benchmark, so that its peak is its own.
fn bench_shapes(generator: &str, work: &Path) {
    println!();
    println!(
        "{:<28} {:>10} {:>12}   budget {} s",
        format!("{SHAPE_APPS} apps, shaped as"),
        "time",
        "peak RSS",
        SHAPE_BUDGET.as_secs()
    );
    for shape in SHAPES {
        let tree = work.join(shape.replace(' ', "-"));
        write_shape(&tree, shape, SHAPE_APPS);
        let mut times = Vec::new();
        let mut peak = 0;
        for _ in 0..3 {
            let out = work.join("shape-out");
            let _ = fs::remove_dir_all(&out);
            fs::create_dir_all(&out).expect("out dir");
            let run = Command::new(std::env::current_exe().expect("this benchmark"))
                .args([PEAK_OF, generator])
                .arg(&tree)
                .arg(&out)
                .output()
                .expect("measure");
            let text = String::from_utf8_lossy(&run.stdout);
            let (us, kb) = text.trim().split_once(' ').expect("time and peak");
            times.push(Duration::from_micros(us.parse().expect("µs")));
            peak = peak.max(kb.parse::<u64>().expect("KiB"));
        }
        let took = median(times);
        let verdict = if took <= SHAPE_BUDGET {
            "within"
        } else {
            "OVER BUDGET"
        };
        println!(
            "{shape:<28} {:>10} {:>9} MiB   {verdict}",
            fmt(took),
            peak / 1024
        );
    }
}

/// In the measuring child: runs the generator on `tree` into `out`, prints its wall time (µs)
/// and peak resident size (KiB).
fn peak_of(generator: &str, tree: &Path, out: &Path) {
    let mut cmd = Command::new(generator);
    as_ordinary_user(&mut cmd, out);
    cmd.arg(out)
        .env("ARCHY_ROOT", tree)
        .env("ARCHY_LOG", "stderr")
        .env("ARCHY_QUADLET", "/nonexistent/quadlet")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let t = Instant::now();
    cmd.status().expect("run generator");
    let took = t.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    println!("{} {}", took.as_micros(), usage.max_rss());
}

/// `n` minimal apps: independent (flat), each requiring the one before (chain), the first also
/// requiring the last (ring), or all providing one name.
fn write_shape(root: &Path, shape: &str, n: usize) {
    let dir = root.join("usr/share/archipelago/apps");
    fs::create_dir_all(&dir).expect("mkdir");
    let id = |i: usize| format!("app-{i:05}");
    for i in 0..n {
        let (provides, requires) = match shape {
            "chain" if i > 0 => ("", format!("requires = [\"{}\"]", id(i - 1))),
            "ring" => ("", format!("requires = [\"{}\"]", id((i + n - 1) % n))),
            "one provided name" => ("provides = [\"svc\"]", String::new()),
            _ => ("", String::new()),
        };
        let text = format!(
            "[app]\nid = \"{}\"\n{provides}\n[image]\nref = \"docker.io/example/app:1\"\n[dependencies]\n{requires}\n",
            id(i)
        );
        fs::write(dir.join(format!("{}.toml", id(i))), text).expect("write");
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
    fs::create_dir_all(share.join("grants.d")).expect("mkdir");
    fs::copy(
        repo.join("grants.toml"),
        share.join("grants.d/archy-catalog.toml"),
    )
    .expect("the catalog's grants");
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
    for (name, decl) in &app.secrets {
        archy::secrets::ensure(&state.path().join("archipelago"), name.as_str(), decl.kind)
            .expect("secret");
    }
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
