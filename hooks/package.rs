//! The hooks that apply changed manifests: `reconcile` (archy-reconcile.service), an update's
//! `update-check` and `rollback`, and the package managers' `post-install` and `pre-remove` (as
//! root, in the service user's name).
use super::*;
pub(crate) fn reconcile() -> anyhow::Result<()> {
    let log = HookLog::new("reconcile", None);
    let start = std::time::Instant::now();
    let s = archy::reconcile::reconcile(&Paths::from_env(), &log)?;
    log.info(&format!(
        "reconciled in {} pass(es), {} ms: stopped [{}], restarted [{}], migrated {}",
        s.passes,
        start.elapsed().as_millis(),
        s.stopped.iter().cloned().collect::<Vec<_>>().join(" "),
        s.restarted.iter().cloned().collect::<Vec<_>>().join(" "),
        s.migrated.len()
    ));
    Ok(())
}

pub(crate) fn post_install() -> anyhow::Result<()> {
    use archy::systemctl::{run_as, Reached};
    let log = HookLog::new("post-install", None);
    let user = archy::service_user::node_user(&Paths::from_env())?;
    // the package may have brought new versions of archy's own units, and a unit the manager
    // still holds from before they were installed (a failed run, say) stays "not found" until a
    // reload: without one, this start would fail or run the old definition
    run_as(&user, &["daemon-reload"])
        .with_context(|| format!("reloading {}'s manager", user.name))?;
    let reconcile = archy::names::RECONCILE_SERVICE;
    let reached = run_as(&user, &["start", reconcile]).with_context(|| {
        format!(
            "{reconcile} failed in {}'s manager (see journalctl --user -u {reconcile})",
            user.name
        )
    })?;
    match reached {
        Reached::NotRunning => log.notice(&format!(
            "the systemd user manager of {} is not running: manifests apply at its next start",
            user.name
        )),
        Reached::Ran => log.info(&format!("applied manifests in {}'s manager", user.name)),
    }
    Ok(())
}

pub(crate) fn pre_remove(id: &str) -> anyhow::Result<()> {
    use archy::systemctl::{run_as, Reached};
    if !archy::text::is_id(id) {
        bail!("`{id}` is not an app id");
    }
    let log = HookLog::new("pre-remove", Some(id));
    let user = archy::service_user::node_user(&Paths::from_env())?;
    let unit = archy::names::app(id).service();
    match run_as(&user, &["stop", &unit]).with_context(|| format!("stopping {unit}"))? {
        Reached::NotRunning => log.notice(&format!(
            "the systemd user manager of {} is not running: nothing to stop",
            user.name
        )),
        Reached::Ran => log.info(&format!("stopped {unit}; its data is kept")),
    }
    Ok(())
}

pub(crate) fn update_check(id: &str) -> anyhow::Result<()> {
    let (paths, node, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("update-check", Some(id));
    archy::update::apply::check_now(&paths, &node, &state, &app, &log)
}

pub(crate) fn rollback(id: &str) -> anyhow::Result<()> {
    let (paths, node, app) = valid_app(id)?;
    let state = state()?;
    let log = HookLog::new("rollback", Some(id));
    archy::update::apply::roll_back(&paths, &node, &state, &app, "rolled back by hand", &log)
}
