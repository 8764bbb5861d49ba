//! What `archy-hook status` says about each app, derived from what systemd and podman report.
//! Pure: the hook gathers the facts, this decides the words, so each case has a test.

use serde::Serialize;
use std::collections::BTreeMap;

/// One app's unit, as `systemctl --user show` and `list-jobs` report it.
#[derive(Debug, Clone, Default)]
pub struct UnitFacts {
    pub active: String,
    pub sub: String,
    pub result: String,
    pub since: String,
    pub restarts: Option<u64>,
    /// The state of a queued start job (`waiting`, `running`), if there is one.
    pub start_job: Option<String>,
}

/// The container's health, as podman reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthFacts {
    /// `healthy`, `unhealthy`, `starting`, or empty without a check.
    pub status: String,
    /// What the latest check printed (its last non-empty line), if anything.
    pub output: Option<String>,
}

/// The state of the manifest behind the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestState {
    Ok,
    Stale,
    Invalid,
    /// Valid, but its `[networks]` does not list the node's network: it is not started.
    #[serde(rename = "off-network")]
    OffNetwork,
    /// Its current definition failed as an update: it runs the previous one.
    #[serde(rename = "rolled-back")]
    RolledBack,
}

impl ManifestState {
    pub fn as_str(self) -> &'static str {
        match self {
            ManifestState::Ok => "ok",
            ManifestState::Stale => "stale",
            ManifestState::Invalid => "invalid",
            ManifestState::OffNetwork => "off-network",
            ManifestState::RolledBack => "rolled-back",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    pub app: String,
    pub state: String,
    pub health: String,
    pub since: String,
    pub restarts: Option<u64>,
    pub manifest: ManifestState,
    /// What the app is waiting for, or why it is not healthy: its check's own words.
    pub detail: String,
    pub error: String,
    /// The bitcoin network the app's container runs on (its `archy.network` label); empty when
    /// no container runs.
    pub network: String,
    /// The image of the definition it runs.
    pub version: String,
    /// The image of the definition before its last update, if archy keeps one.
    pub previous: String,
}

/// Longest detail shown: a check's output is the app's text, not ours.
const DETAIL_MAX: usize = 160;

/// The row for one app. `deps` are the units it starts after, with their active states.
pub fn row(
    app: &str,
    unit: &UnitFacts,
    health: &HealthFacts,
    deps: &[(String, String)],
    manifest: ManifestState,
    error: Option<String>,
) -> Row {
    // ExecCondition= (the disk preflight) said no: not failed, not retried, but held
    let state = if unit.active == "inactive" && unit.result == "exec-condition" {
        "held/preflight".to_string()
    } else if unit.active == "inactive" && unit.start_job.is_some() {
        "queued".to_string()
    } else {
        format!("{}/{}", unit.active, unit.sub)
    };
    let detail = detail(unit, health, deps);
    // an app that runs and passes its check has nothing to explain: its journal's last error
    // line is likely only its own stderr chatter
    let fine = unit.active == "active"
        && matches!(health.status.as_str(), "healthy" | "")
        && manifest == ManifestState::Ok;
    let error = if fine { None } else { error };
    Row {
        app: app.to_string(),
        state,
        health: health.status.clone(),
        since: unit.since.clone(),
        restarts: unit.restarts,
        manifest,
        detail: crate::text::one_line(&truncate(&detail, DETAIL_MAX)),
        error: error.unwrap_or_default(),
        network: String::new(),
        version: String::new(),
        previous: String::new(),
    }
}

fn detail(unit: &UnitFacts, health: &HealthFacts, deps: &[(String, String)]) -> String {
    if unit.active == "inactive" && unit.start_job.is_some() {
        // systemd holds a start job back only for After= units that are starting or stopping
        // themselves (or have a job queued): an inactive one with no job, like Knots while Core
        // is the provider, holds nothing up
        let pending: Vec<&str> = deps
            .iter()
            .filter(|(_, state)| {
                matches!(
                    state.as_str(),
                    "activating" | "deactivating" | "reloading" | "queued"
                )
            })
            .map(|(u, _)| u.as_str())
            .collect();
        return if pending.is_empty() {
            "start queued".to_string()
        } else {
            format!("waiting for {}", pending.join(", "))
        };
    }
    let running = matches!(unit.active.as_str(), "active" | "activating" | "reloading");
    if !running || health.status.is_empty() {
        return String::new();
    }
    if health.status == "healthy" {
        // what a passing check says of the app ("serving; syncing its graph"), if anything
        return health.output.clone().unwrap_or_default();
    }
    match (&health.output, health.status.as_str()) {
        (Some(out), _) => out.clone(),
        (None, "starting") => "starting: no check has run yet".to_string(),
        (None, s) => s.to_string(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// The properties `unit_facts` reads, for `systemctl --user show`.
pub const UNIT_PROPERTIES: &[&str] = &[
    "Id",
    "ActiveState",
    "SubState",
    "ActiveEnterTimestamp",
    "NRestarts",
    "LoadState",
    "Result",
];

/// A unit's facts from `systemctl show` (one map per unit, `UNIT_PROPERTIES`) and its queued jobs
/// (`systemctl::jobs`); a unit the manager did not report has empty facts.
pub fn unit_facts(
    shown: &[BTreeMap<String, String>],
    jobs: &BTreeMap<String, (String, String)>,
    unit: &str,
) -> UnitFacts {
    let p = shown
        .iter()
        .find(|m| m.get("Id").map(String::as_str) == Some(unit));
    let get = |k: &str| p.and_then(|m| m.get(k)).cloned().unwrap_or_default();
    UnitFacts {
        active: get("ActiveState"),
        sub: get("SubState"),
        result: get("Result"),
        since: get("ActiveEnterTimestamp"),
        restarts: get("NRestarts").parse().ok(),
        start_job: jobs
            .get(unit)
            .filter(|(kind, _)| kind == "start")
            .map(|(_, state)| state.clone()),
    }
}

/// A dependency's state as a dependent's detail weighs it: an inactive unit with a start job of
/// its own is `queued`, waiting like the dependent.
pub fn dependency_state(f: &UnitFacts) -> String {
    match (f.active.as_str(), &f.start_job) {
        ("inactive", Some(_)) => "queued".to_string(),
        _ => f.active.clone(),
    }
}

/// Whether podman's health of the app's container is worth asking: it is starting or running.
pub fn asks_health(unit: &UnitFacts) -> bool {
    matches!(unit.active.as_str(), "active" | "activating")
}

/// Whether the container's network label is worth asking: a container exists in these states.
pub fn asks_network(unit: &UnitFacts) -> bool {
    matches!(
        unit.active.as_str(),
        "active" | "activating" | "deactivating"
    )
}

/// The manifest's state, and the error to show for it. For a valid, current manifest the error
/// is the unit's own (its journal's last error line), which the caller looks up: None here.
pub fn manifest_state(
    invalid: Option<&crate::catalog::InvalidApp>,
    stale: Option<&crate::error::InputError>,
    rolled_back: Option<&crate::update::Failed>,
) -> (ManifestState, Option<String>) {
    if let (None, None, Some(f)) = (invalid, stale, rolled_back) {
        let error = if f.refused {
            format!(
                "update to {} refused, running {}: {}",
                f.to, f.from, f.reason
            )
        } else {
            format!("rolled back from {} to {}: {}", f.to, f.from, f.reason)
        };
        return (ManifestState::RolledBack, Some(error));
    }
    match (invalid, stale) {
        (Some(bad), _) => {
            let state = if bad.errors.iter().any(crate::networks::is_unsupported) {
                ManifestState::OffNetwork
            } else {
                ManifestState::Invalid
            };
            (state, bad.errors.first().map(|e| e.to_string()))
        }
        (None, Some(e)) => (
            ManifestState::Stale,
            Some(format!("{e} (running its last good definition)")),
        ),
        (None, None) => (ManifestState::Ok, None),
    }
}

/// The last non-empty line of a check's output, trimmed: what a check says of the app comes
/// last, after whatever its shell or tools warned about first.
pub fn last_line(output: &str) -> Option<String> {
    output
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string)
}

/// An image reference's tag (`v0.19.1-beta` of `docker.io/lightninglabs/lnd:v0.19.1-beta`), for
/// the table; the JSON has the whole reference.
fn tag(reference: &str) -> &str {
    let name = reference.rsplit('/').next().unwrap_or(reference);
    name.rsplit_once(':').map_or(name, |(_, t)| t)
}

/// The table `archy-hook status` prints, under the node's network.
pub fn table(network: &str, rows: &[Row]) -> String {
    let mut out = format!(
        "node network: {network}\n{:<18} {:<22} {:<10} {:<8} {:<11} {:<14} {:<14} {:<9} {:<30} DETAIL / LAST ERROR\n",
        "APP", "STATE", "HEALTH", "RESTARTS", "MANIFEST", "VERSION", "PREVIOUS", "NETWORK", "SINCE"
    );
    for r in rows {
        let note = match (r.detail.is_empty(), r.error.is_empty()) {
            (false, false) => format!("{}; last error: {}", r.detail, r.error),
            (false, true) => r.detail.clone(),
            (true, _) => r.error.clone(),
        };
        out.push_str(&format!(
            "{:<18} {:<22} {:<10} {:<8} {:<11} {:<14} {:<14} {:<9} {:<30} {}\n",
            r.app,
            r.state,
            r.health,
            r.restarts.map(|n| n.to_string()).unwrap_or_default(),
            r.manifest.as_str(),
            tag(&r.version),
            tag(&r.previous),
            r.network,
            r.since,
            note
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_unit_from_show_and_jobs() {
        let show = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let shown = vec![
            show(&[
                ("Id", "archy-a.service"),
                ("ActiveState", "active"),
                ("NRestarts", "3"),
            ]),
            show(&[
                ("Id", "archy-b.service"),
                ("ActiveState", "inactive"),
                ("NRestarts", ""),
            ]),
        ];
        let jobs: BTreeMap<String, (String, String)> = [
            (
                "archy-b.service".to_string(),
                ("start".to_string(), "waiting".to_string()),
            ),
            (
                "archy-a.service".to_string(),
                ("stop".to_string(), "running".to_string()),
            ),
        ]
        .into();
        let a = unit_facts(&shown, &jobs, "archy-a.service");
        assert_eq!((a.active.as_str(), a.restarts), ("active", Some(3)));
        assert_eq!(a.start_job, None);
        let b = unit_facts(&shown, &jobs, "archy-b.service");
        assert_eq!(b.restarts, None);
        assert_eq!(b.start_job.as_deref(), Some("waiting"));
        assert_eq!(dependency_state(&b), "queued");
        assert_eq!(dependency_state(&a), "active");
        let unknown = unit_facts(&shown, &jobs, "archy-c.service");
        assert_eq!(unknown.active, "");
        assert_eq!(dependency_state(&unit("inactive", "dead")), "inactive");
    }

    #[test]
    fn what_is_asked_of_podman_by_unit_state() {
        // (active state, health asked, network asked)
        let table = [
            ("active", true, true),
            ("activating", true, true),
            ("deactivating", false, true),
            ("reloading", false, false),
            ("inactive", false, false),
            ("failed", false, false),
            ("", false, false),
        ];
        for (active, health, network) in table {
            let u = unit(active, "x");
            assert_eq!(
                (asks_health(&u), asks_network(&u)),
                (health, network),
                "{active}"
            );
        }
    }

    #[test]
    fn manifest_states() {
        use crate::error::InputError;
        let path = std::path::Path::new("/a/x.toml");
        let bad = |e: InputError| crate::catalog::InvalidApp {
            stem: "x".into(),
            source: path.into(),
            errors: vec![e, InputError::at_key(path, "[app] name", "second")],
        };
        let invalid = bad(InputError::at_key(path, "[image] ref", "not a reference"));
        let (state, error) = manifest_state(Some(&invalid), None, None);
        assert_eq!(state, ManifestState::Invalid);
        assert!(error.unwrap().contains("not a reference"));
        let off = bad(InputError::at_key(
            path,
            crate::networks::UNSUPPORTED_KEY,
            "signet only",
        ));
        assert_eq!(
            manifest_state(Some(&off), None, None).0,
            ManifestState::OffNetwork
        );
        // invalid wins over a last good copy
        let stale = InputError::at_key(path, "[app] id", "broken now");
        assert_eq!(
            manifest_state(Some(&invalid), Some(&stale), None).0,
            ManifestState::Invalid
        );
        let (state, error) = manifest_state(None, Some(&stale), None);
        assert_eq!(state, ManifestState::Stale);
        assert!(error
            .unwrap()
            .ends_with("(running its last good definition)"));
        assert_eq!(manifest_state(None, None, None), (ManifestState::Ok, None));
        let failed = crate::update::Failed {
            version: "v".into(),
            from: "web:1".into(),
            to: "web:2".into(),
            reason: "not healthy within 60s".into(),
            at: 0,
            refused: false,
        };
        let (state, error) = manifest_state(None, None, Some(&failed));
        assert_eq!(state, ManifestState::RolledBack);
        assert_eq!(
            error.as_deref(),
            Some("rolled back from web:2 to web:1: not healthy within 60s")
        );
        let refused = crate::update::Failed {
            refused: true,
            reason: "not enough disk".into(),
            ..failed.clone()
        };
        assert_eq!(
            manifest_state(None, None, Some(&refused)).1.as_deref(),
            Some("update to web:2 refused, running web:1: not enough disk")
        );
        // an invalid manifest says so first
        assert_eq!(
            manifest_state(Some(&invalid), None, Some(&failed)).0,
            ManifestState::Invalid
        );
    }

    fn unit(active: &str, sub: &str) -> UnitFacts {
        UnitFacts {
            active: active.into(),
            sub: sub.into(),
            ..Default::default()
        }
    }

    fn health(status: &str, output: Option<&str>) -> HealthFacts {
        HealthFacts {
            status: status.into(),
            output: output.map(str::to_string),
        }
    }

    #[test]
    fn a_starting_app_shows_what_its_check_said() {
        let r = row(
            "electrumx",
            &unit("activating", "start"),
            &health("starting", Some("waiting for bitcoind: initial sync 45.2%")),
            &[],
            ManifestState::Ok,
            None,
        );
        assert_eq!(r.state, "activating/start");
        assert_eq!(r.detail, "waiting for bitcoind: initial sync 45.2%");
        let r = row(
            "x",
            &unit("activating", "start"),
            &health("starting", None),
            &[],
            ManifestState::Ok,
            None,
        );
        assert_eq!(r.detail, "starting: no check has run yet");
    }

    #[test]
    fn a_healthy_app_has_what_its_check_said_and_no_error() {
        let r = row(
            "x",
            &unit("active", "running"),
            &health("healthy", Some("serving; syncing its graph")),
            &[],
            ManifestState::Ok,
            Some("info: listening".into()),
        );
        assert_eq!(r.detail, "serving; syncing its graph");
        let quiet = row(
            "x",
            &unit("active", "running"),
            &health("healthy", None),
            &[],
            ManifestState::Ok,
            None,
        );
        assert_eq!(quiet.detail, "");
        assert_eq!(r.error, "");
        assert_eq!(r.health, "healthy");
        // but a stale manifest's error shows, and a failing app's last error
        let stale = row(
            "x",
            &unit("active", "running"),
            &health("healthy", None),
            &[],
            ManifestState::Stale,
            Some("x.toml:3: unknown field".into()),
        );
        assert_eq!(stale.error, "x.toml:3: unknown field");
        let failing = row(
            "x",
            &unit("activating", "auto-restart"),
            &HealthFacts::default(),
            &[],
            ManifestState::Ok,
            Some("Access denied".into()),
        );
        assert_eq!(failing.error, "Access denied");
    }

    #[test]
    fn a_queued_start_names_the_dependencies_it_waits_for() {
        let mut u = unit("inactive", "dead");
        u.start_job = Some("waiting".into());
        let deps = [
            (
                "archy-bitcoin-core.service".to_string(),
                "active".to_string(),
            ),
            (
                "archy-electrumx.service".to_string(),
                "activating".to_string(),
            ),
            (
                "archy-bitcoin-knots.service".to_string(),
                "inactive".to_string(),
            ),
            (
                "archy-mempool-mariadb.service".to_string(),
                "queued".to_string(),
            ),
        ];
        let r = row(
            "mempool-backend",
            &u,
            &HealthFacts::default(),
            &deps,
            ManifestState::Ok,
            None,
        );
        assert_eq!(r.state, "queued");
        assert_eq!(
            r.detail,
            "waiting for archy-electrumx.service, archy-mempool-mariadb.service"
        );
    }

    #[test]
    fn held_by_the_preflight() {
        let mut u = unit("inactive", "dead");
        u.result = "exec-condition".into();
        let r = row(
            "x",
            &u,
            &HealthFacts::default(),
            &[],
            ManifestState::Ok,
            None,
        );
        assert_eq!(r.state, "held/preflight");
    }

    #[test]
    fn hostile_output_stays_on_one_short_line() {
        let long = format!("a\u{1b}[2Jb{}", "x".repeat(500));
        let r = row(
            "x",
            &unit("active", "running"),
            &health("unhealthy", Some(&long)),
            &[],
            ManifestState::Ok,
            None,
        );
        assert!(!r.detail.contains('\u{1b}'));
        assert!(r.detail.chars().count() <= DETAIL_MAX + 8, "{}", r.detail);
        assert_eq!(
            last_line("bash: warning: setlocale: LC_ALL\n  waiting: not synchronized \n\n"),
            Some("waiting: not synchronized".into())
        );
    }

    #[test]
    fn the_table_joins_detail_and_error() {
        let r = Row {
            app: "lnd".into(),
            state: "activating/start".into(),
            health: "starting".into(),
            since: String::new(),
            restarts: Some(2),
            manifest: ManifestState::Ok,
            detail: "waiting".into(),
            error: "boom".into(),
            network: "signet".into(),
            version: "localhost/web:2".into(),
            previous: "registry.local:5000/web:1".into(),
        };
        let t = table("signet", &[r]);
        assert!(t.contains(" 2              1              signet "), "{t}");
        assert_eq!(t.lines().next(), Some("node network: signet"), "{t}");
        let line = t.lines().nth(2).unwrap();
        assert!(line.ends_with("waiting; last error: boom"), "{t}");
        assert!(line.contains(" signet "), "{t}");
    }
}
