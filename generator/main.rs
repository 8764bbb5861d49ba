//! archy-generator: a systemd user generator (systemd.generator(7)) that renders the node's app
//! manifests into Quadlet units and runs podman's quadlet on them.

use anyhow::Context as _;
use archy::generate::{self, quadlet_path};
use archy::log::Logger;
use archy::paths::Paths;
use archy::render::Context;
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Render the node's app manifests into Quadlet units and services.
///
/// Run by systemd at every `systemctl --user daemon-reload` with 1 or 3 output directories; it
/// writes only into the first. Reads /usr/share/archipelago/apps/*.toml, /etc/archipelago/apps/
/// *.toml and /etc/archipelago/node.toml (below $ARCHY_ROOT when set); runs $ARCHY_QUADLET
/// (default /usr/libexec/podman/quadlet). See archy-generator(8).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Print what would be written instead of writing it.
    #[arg(long)]
    dry_run: bool,
    /// Output directories: normal [early late]. Required unless --dry-run.
    #[arg(num_args = 0..=3)]
    dirs: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // ARCHY_LOG=stderr keeps test and benchmark runs out of the kernel log
    let kmsg = !args.dry_run && std::env::var("ARCHY_LOG").as_deref() != Ok("stderr");
    let log = Logger::new("archy-generator", kmsg);
    match run(&args, &log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args, log: &Logger) -> anyhow::Result<()> {
    if !args.dry_run && !matches!(args.dirs.len(), 1 | 3) {
        anyhow::bail!(
            "expected 1 or 3 output directories, got {} (see --help)",
            args.dirs.len()
        );
    }
    let paths = Paths::from_env();
    let ctx = Context {
        archy_root: paths.root().map(|r| r.display().to_string()),
        hook: archy::hook_binary(),
    };
    let (node, catalog) = generate::load_catalog(&paths);
    let user = generate::configured_user(&paths, &node);
    if !generate::is_current_user(user.as_deref()) {
        let why = if nix::unistd::getuid().is_root() {
            "archy never runs apps as root".to_string()
        } else {
            format!(
                "the node's service user is `{}`, not this user",
                user.unwrap_or_default()
            )
        };
        if args.dry_run {
            log.info(&format!("note: {why}: a real run writes nothing"));
        } else {
            return Ok(());
        }
    }
    let rendered = generate::render_loaded(&node, &catalog, &ctx);
    for p in &rendered.problems {
        log.error(p);
    }
    let quadlet = quadlet_path();
    if args.dry_run {
        return dry_run(&rendered, &quadlet, &ctx, log);
    }
    let out = &args.dirs[0];
    let src = generate::write_output(out, &rendered)?;
    if !quadlet.exists() {
        anyhow::bail!(
            "quadlet not found at {} (is podman installed? set ARCHY_QUADLET): {} app unit(s) not generated",
            quadlet.display(),
            rendered.sources.len() - 1
        );
    }
    let run = generate::run_quadlet(&quadlet, &src, Some(out))?;
    log_quadlet(&run.stderr, log);
    // an app whose .container quadlet refused fails visibly, saying why, instead of having no unit
    for (id, source) in generate::unconverted(&rendered, |s| out.join(s).exists()) {
        let why = unconverted_reason(&run, &source);
        log.error(&format!("app `{id}`: {why}"));
        let manifest = catalog
            .valid
            .get(id)
            .map(|a| a.source.clone())
            .unwrap_or_default();
        if let Some(text) = archy::render::unconverted_unit(&manifest, id, &why, &ctx) {
            let path = out.join(archy::names::app(id).service());
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    // the process ends here: freeing a large catalog piece by piece is time a reload waits for
    std::mem::forget((catalog, rendered));
    Ok(())
}

fn dry_run(
    rendered: &archy::render::Rendered,
    quadlet: &Path,
    ctx: &Context,
    log: &Logger,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = String::new();
    if quadlet.exists() {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        for (name, text) in &rendered.sources {
            std::fs::write(dir.path().join(name), text)?;
        }
        let run = generate::run_quadlet(quadlet, dir.path(), None)?;
        out.push_str(&run.stdout);
        log_quadlet(&run.stderr, log);
        let printed = |s: &str| run.stdout.contains(&format!("---{s}---"));
        for (id, source) in generate::unconverted(rendered, printed) {
            let why = unconverted_reason(&run, &source);
            log.error(&format!("app `{id}`: {why}"));
            let text = archy::render::unconverted_unit(Path::new(&source), id, &why, ctx)
                .unwrap_or_default();
            out.push_str(&format!("---archy-{id}.service---\n{text}\n"));
        }
    } else {
        log.warn(&format!(
            "quadlet not found at {}: showing the Quadlet sources it would convert into services",
            quadlet.display()
        ));
        for (name, text) in &rendered.sources {
            let service = name
                .replace(".container", ".service")
                .replace("archy.network", "archy-network.service");
            out.push_str(&format!("---{service}--- (from {name})\n{text}\n"));
        }
    }
    for (name, text) in &rendered.units {
        out.push_str(&format!("---{name}---\n{text}\n"));
    }
    out.push_str(&format!(
        "---default.target.wants/{}--- -> ../{0}\n",
        archy::render::TARGET
    ));
    std::io::stdout()
        .write_all(out.as_bytes())
        .context("writing to stdout")
}

/// Why quadlet made no service of `source`, in its words when it said.
fn unconverted_reason(run: &generate::QuadletRun, source: &str) -> String {
    match run.error_for(source) {
        Some(why) => format!("quadlet refused {source}: {why}"),
        None => format!("quadlet made no service of {source}"),
    }
}

/// Passes on what quadlet said, minus its per-file progress lines.
fn log_quadlet(stderr: &str, log: &Logger) {
    for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !line.contains("Loading source unit file") {
            log.warn(&format!("quadlet: {line}"));
        }
    }
}
