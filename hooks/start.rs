//! The hooks an app's unit runs before its container starts (`preflight` as ExecCondition=,
//! then `volumes`, `secrets`, `render`, `ensure-image`, `init`, `leftover`), and `explain`, which
//! an app's failing unit runs.
use super::*;
pub(crate) fn explain(id: &str) -> ExitCode {
    // run by the unit of an app quadlet refused to convert: the reason is the unit's
    if let Some(why) = std::env::var(archy::render::QUADLET_ERROR_ENV)
        .ok()
        .filter(|w| !w.is_empty())
    {
        println!("archy app `{id}` has no service: {why}");
        if libsystemd::logging::connected_to_journal() {
            HookLog::new("explain", Some(id)).error(&why);
            archy::journal::notify_status(&format!("not converted: {why}"));
        }
        return ExitCode::FAILURE;
    }
    let paths = Paths::from_env();
    let (_, catalog) = generate::load_catalog(&paths);
    if let Some(app) = catalog.invalid.get(id) {
        let off_network = app.errors.iter().any(archy::networks::is_unsupported);
        if off_network {
            println!("archy app `{id}` does not run on the node's network and will not start:");
        } else {
            println!("archy app `{id}` is invalid and will not start:");
        }
        for e in &app.errors {
            println!("  {e}");
        }
        if off_network {
            println!("It starts again when node.toml's `network` is one it lists in [networks].");
        } else {
            println!("Fix the file, then run `systemctl --user daemon-reload`.");
        }
        if libsystemd::logging::connected_to_journal() {
            // run by the app's failing unit: the reason goes into the journal with the unit's
            // name and invocation (a short-lived process's stdout may lose them), and into the
            // unit's status line, so `systemctl --user status` shows it whatever the journal did
            let log = HookLog::new("explain", Some(id));
            for e in &app.errors {
                log.error(&e.to_string());
            }
            if let Some(first) = app.errors.first() {
                let what = if off_network {
                    "not on this network"
                } else {
                    "invalid manifest"
                };
                archy::journal::notify_status(&format!("{what}: {first}"));
            }
        }
        return ExitCode::FAILURE;
    }
    if catalog.valid.contains_key(id) {
        println!(
            "archy app `{id}` is valid. If its unit still fails, run `systemctl --user daemon-reload`."
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "no manifest for `{id}` in {} or {} (or it is masked)",
        paths.vendor_apps().display(),
        paths.admin_apps().display()
    );
    ExitCode::FAILURE
}

pub(crate) fn volumes(id: &str) -> anyhow::Result<()> {
    let (_, node, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("volumes", Some(id));
    for d in archy::volumes::host_dirs(&node, &state, &app.manifest) {
        let created = archy::volumes::ensure(&d).with_context(|| {
            format!(
                "volume `{}` of app `{id}`, at {} (app `{}`'s container writes there)",
                d.target,
                d.path().display(),
                d.writer
            )
        })?;
        for p in created {
            log.info(&format!(
                "created {} for volume `{}`",
                p.display(),
                d.target
            ));
        }
    }
    Ok(())
}

pub(crate) fn secrets(id: &str) -> anyhow::Result<()> {
    let (_, _, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("secrets", Some(id));
    for (name, kind) in &app.manifest.secrets {
        let created = archy::secrets::ensure(&state, name.as_str(), kind.kind)
            .with_context(|| format!("creating secret `{name}`"))?;
        if created {
            log.notice(&format!("created secret `{name}`"));
        }
    }
    // what the app declared, for a purge once its manifest is gone
    let names: String = app
        .manifest
        .secrets
        .keys()
        .map(|n| format!("{n}\n"))
        .collect();
    let file = archy::purge::secret_names_file(&state, id);
    archy::secrets::create_private_dir(file.parent().expect("below the state dir"))
        .and_then(|()| archy::atomic::write(&file, names.as_bytes(), 0o600))
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

pub(crate) fn render(id: &str) -> anyhow::Result<()> {
    let (paths, node, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("render", Some(id));
    let outcomes = archy::config::render_app(
        &paths,
        &state,
        &app.manifest,
        &node,
        app.rolled_back.as_deref(),
    )?;
    for o in outcomes.iter().filter(|o| o.changed) {
        log.info(&format!("rendered {}", o.target.display()));
    }
    Ok(())
}

pub(crate) fn ensure_image(id: &str) -> anyhow::Result<()> {
    let (paths, node, app) = valid_app(id)?;
    let log = HookLog::new("ensure-image", Some(id));
    present_image(&paths, &node, &app, &log)?;
    // the image is there now: what its own user would make of the app's mounts
    let reference = app.manifest.image.reference.as_str();
    let user = podman::image_user(reference).context("running podman image inspect")?;
    use archy::manifest::UnmappedUser;
    match user.and_then(|u| app.manifest.unmapped_image_user(&u)) {
        Some(UnmappedUser::Refused(why)) => bail!("{reference}: {why}"),
        Some(UnmappedUser::Warning(why)) => log.warning(&format!("{reference}: {why}")),
        None => {}
    }
    Ok(())
}

pub(crate) fn present_image(
    paths: &Paths,
    node: &NodeSettings,
    app: &ValidApp,
    log: &HookLog,
) -> anyhow::Result<()> {
    use archy::image::Action;
    let image = &app.manifest.image;
    let reference = image.reference.as_str();
    let present = podman::image_exists(reference).context("running podman")?;
    let context = image.build.as_ref().map(|sub| {
        let dir = paths.build_context(sub.as_str());
        let is_dir = dir.is_dir();
        (dir, is_dir)
    });
    let decision = archy::image::decide(image, present, context, &node.registries);
    if let Some(dir) = &decision.missing_context {
        log.notice(&format!("build context {} is missing", dir.display()));
    }
    match decision.action {
        Action::Keep => Ok(()),
        Action::Refuse(why) => bail!("{why}"),
        Action::Build(context) => {
            log.notice(&format!("building {reference} from {}", context.display()));
            if !podman::build(reference, &context).context("running podman build")? {
                bail!(
                    "podman build of {reference} from {} failed",
                    context.display()
                );
            }
            Ok(())
        }
        Action::Pull { tls_verify } => {
            log.notice(&format!("pulling {reference}"));
            podman::pull(reference, tls_verify).with_context(|| format!("pulling {reference}"))?;
            Ok(())
        }
    }
}

pub(crate) fn init(id: &str) -> anyhow::Result<()> {
    let (_, node, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("init", Some(id));
    let data = archy::names::app(id).data_dir(&node);
    for step in &app.manifest.init {
        let name = step.name.as_str();
        let creates =
            archy::init::creates(&node, &app.manifest, step).map_err(anyhow::Error::msg)?;
        let done = || {
            archy::init::is_done(&data, creates.as_str())
                .with_context(|| format!("init step `{name}`"))
        };
        if done()? {
            continue;
        }
        log.notice(&format!(
            "running init step `{name}`: {} is missing",
            creates.as_str()
        ));
        let args = archy::init::podman_args(&node, &app.manifest, &state, step);
        let out = podman::run_step(&args, step.keep_output).context("running podman")?;
        if !done()? {
            bail!(
                "init step `{name}` did not create {} ({}); its messages are in this unit's journal",
                data.join(creates.as_str()).display(),
                out.status
            );
        }
        if !out.status.success() {
            // what it made is there: its output may be the only copy of a seed, so keep it
            log.warning(&format!(
                "init step `{name}` created {} but then failed ({}): keeping its output",
                creates.as_str(),
                out.status
            ));
        }
        if step.keep_output {
            keep_output(&state, id, name, &out.stdout, &log)?;
        } else {
            log.notice(&format!("init step `{name}` done"));
        }
    }
    Ok(())
}

/// Keeps a step's output 0600 in the app's state; one kept before is moved aside, never lost.
pub(crate) fn keep_output(
    state: &std::path::Path,
    id: &str,
    step: &str,
    output: &[u8],
    log: &HookLog,
) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let kept = archy::init::keep_output(state, id, step, output, now)?;
    if let Some(aside) = kept.moved_aside {
        log.warning(&format!(
            "init step `{step}` ran again: its earlier output is kept in {}",
            aside.display()
        ));
    }
    log.notice(&format!(
        "init step `{step}` done; its output is kept in {} (0600): show it with \
         `archy-hook reveal {id} {step}`",
        kept.file.display()
    ));
    Ok(())
}

pub(crate) fn leftover(id: &str) -> anyhow::Result<()> {
    use archy::leftover::{decide, parse_inspect, Action, HostProcesses};
    if !archy::text::is_id(id) {
        bail!("`{id}` is not an app id");
    }
    let name = archy::names::app(id).container();
    let Some(line) = podman::container_state(&name) else {
        return Ok(()); // no such container: nothing left over
    };
    let seen = parse_inspect(&line)
        .with_context(|| format!("unexpected output of podman inspect {name}: {line:?}"))?;
    if decide(&seen, &HostProcesses) == Action::Nothing {
        return Ok(());
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .context("XDG_RUNTIME_DIR is not set: podman's runtime dir is unknown")?;
    archy::leftover::write_exit_file(&runtime, &seen.id)
        .context("writing the exit file conmon never wrote")?;
    podman::remove_container_checked(&seen.id)?;
    HookLog::new("leftover", Some(id)).notice(&format!(
        "removed the leftover container {name} ({}): podman recorded it as paused, but its \
         process and conmon were gone, and podman can neither stop nor replace such a container",
        &seen.id[..12]
    ));
    Ok(())
}

pub(crate) fn preflight(id: &str) -> anyhow::Result<()> {
    let (_, node, app) = valid_app(id)?;
    let reserve = app
        .manifest
        .service
        .disk_reserve
        .unwrap_or(node.disk_reserve);
    let dir = archy::names::app(id).data_dir(&node);
    let free = archy::disk::available(&dir)
        .with_context(|| format!("checking free space at {}", dir.display()))?;
    if free < reserve.0 {
        bail!(
            "not starting: {} free under {}, below the disk reserve of {reserve}; free some space, \
             then `systemctl --user start {}`",
            ByteSize(free),
            dir.display(),
            archy::names::app(id).service()
        );
    }
    Ok(())
}
