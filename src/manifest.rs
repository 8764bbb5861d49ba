//! The app manifest: one TOML file per app, `<id>.toml`. Every key is listed here with its default;
//! unknown keys are refused. `archy-app.toml(5)` documents the same, and a test keeps the two in
//! step.

use crate::duration::{Duration, Timeout};
use crate::text::{
    AbsPath, Capability, EnvName, FileName, Id, ImageRef, NetworkKey, NetworkValue, SubPath, Text,
    UserNs, UserSpec,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub app: App,
    pub image: Image,
    #[serde(default)]
    pub container: Container,
    #[serde(default)]
    pub dependencies: Dependencies,
    #[serde(default)]
    pub health: Option<Health>,
    #[serde(default)]
    pub service: Service,
    /// Secrets this app needs, by name; created on first start by `archy-hook secrets`.
    #[serde(default)]
    pub secrets: BTreeMap<Id, SecretDecl>,
    /// Config files rendered from templates by `archy-hook render` and mounted read-only.
    #[serde(default)]
    pub config: Vec<ConfigFile>,
    /// Steps run once, before the app's first start, by `archy-hook init`.
    #[serde(default)]
    pub init: Vec<InitStep>,
    /// Files the app rewrites that archy copies, each new version, to node.toml's backup_dir.
    #[serde(default)]
    pub backup: Vec<BackupFile>,
    /// The networks the app runs on, each with the app's own values for it (`{{ network.<key> }}`
    /// in any string, see `crate::networks`). Empty: any network.
    #[serde(default)]
    pub networks: BTreeMap<crate::node::BitcoinNetwork, BTreeMap<NetworkKey, NetworkValue>>,
    /// How a new version of the app is tried, and rolled back when it does not turn healthy.
    #[serde(default)]
    pub update: Update,
}

/// `[update]`: a changed definition of a running app is kept only once it has been healthy for
/// `grace`; one that is not healthy within `deadline` is replaced by the previous definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// How long a new version may take to turn healthy. Default: `[service] start_timeout` (at
    /// least the health check's start period); `infinity`: never rolled back on its own.
    #[serde(default)]
    pub deadline: Option<Timeout>,
    /// How long a new version must stay healthy before the previous one (and its image) is let go.
    #[serde(default = "default_update_grace")]
    pub grace: Duration,
    /// Whether the app's data still works with the previous version after the new one ran (no
    /// schema migration). `false` needs `snapshot`.
    #[serde(default = "default_true")]
    pub reversible: bool,
    /// With `reversible = false`: what below the app's data dir is copied before the new
    /// version's first start, and put back on a rollback.
    #[serde(default)]
    pub snapshot: Vec<SubPath>,
}

impl Default for Update {
    fn default() -> Self {
        Self {
            deadline: None,
            grace: default_update_grace(),
            reversible: true,
            snapshot: Vec::new(),
        }
    }
}

fn default_update_grace() -> Duration {
    Duration::from_secs(60)
}

/// A file below the app's data dir (lnd's `channel.backup`) that a path unit watches: each new
/// version is copied by `archy-hook backup` to `<backup_dir>/<id>/<name>/`, the last `keep` kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupFile {
    /// Names the backup (its units and its directory).
    pub name: Id,
    /// Below the app's data dir; a template like `[[init]] creates`.
    pub path: Text,
    /// How many versions are kept.
    #[serde(default = "default_backup_keep")]
    pub keep: u32,
}

/// A step run once, before the app's first start (say, creating lnd's wallet): in a container
/// of the app's image, as its user, with its volumes, configs and environment, and without a
/// network. It is done once `creates` exists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitStep {
    /// Names the step (and its saved output).
    pub name: Id,
    /// What runs in the container, replacing the image's entrypoint and command.
    pub command: Vec<Text>,
    /// Below the app's data dir: present when the step is done, so it is not run again. A
    /// template with the configs' variables but `secrets` (`{{ node.network }}`: a wallet per
    /// network).
    pub creates: Text,
    /// The longest the step may run.
    #[serde(default = "default_init_timeout")]
    pub timeout: Duration,
    /// Keep what the step prints on its standard output (a wallet's seed, say) in a 0600 file
    /// of the app's state, for `archy-hook reveal`; it is not logged. Default false: its output
    /// goes to the journal.
    #[serde(default)]
    pub keep_output: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub id: Id,
    /// Human name; default: the id.
    #[serde(default)]
    pub name: Option<Text>,
    #[serde(default)]
    pub description: Option<Text>,
    /// Names this app answers to for dependents (`bitcoind`). Apps sharing a name conflict.
    #[serde(default)]
    pub provides: Vec<Id>,
    /// Other apps (ids or provided names) that must not run beside this one.
    #[serde(default)]
    pub conflicts: Vec<Id>,
    /// Marks a companion UI: it requires this app (id or provided name) and follows it.
    #[serde(default)]
    pub companion_for: Option<Id>,
    /// Whether `archy.target` starts the app. Default true.
    #[serde(default = "yes")]
    pub autostart: bool,
    /// Directories below this app's data dir that apps requiring it may mount read-only (a
    /// cookie file it writes, say). Default: none.
    #[serde(default)]
    pub shares: Vec<SubPath>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    #[serde(rename = "ref")]
    pub reference: ImageRef,
    /// A local build context (a directory below `/usr/share/archipelago/build/`), used by
    /// `archy-hook ensure-image` before any registry.
    #[serde(default)]
    pub build: Option<SubPath>,
    #[serde(default)]
    pub pull: PullPolicy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Pull only when the image is absent (the default).
    #[default]
    Missing,
    /// Never pull: the image must be present or built locally.
    Never,
    Always,
    Newer,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Missing => "missing",
            PullPolicy::Never => "never",
            PullPolicy::Always => "always",
            PullPolicy::Newer => "newer",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    /// Arguments after the image (its CMD); default: the image's own.
    #[serde(default)]
    pub command: Option<Vec<Text>>,
    /// Replaces the image's ENTRYPOINT; `[]` removes it (the command then runs as is). Default:
    /// the image's own.
    #[serde(default)]
    pub entrypoint: Option<Vec<Text>>,
    #[serde(default)]
    pub environment: BTreeMap<EnvName, Text>,
    #[serde(default)]
    pub network: NetworkMode,
    /// Extra DNS names on the `archy` network (e.g. `bitcoind`).
    #[serde(default)]
    pub network_aliases: Vec<Id>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Paths inside the container mounted as tmpfs.
    #[serde(default)]
    pub tmpfs: Vec<AbsPath>,
    /// Read-only root filesystem. Default false.
    #[serde(default)]
    pub read_only: bool,
    /// Capabilities kept; all others are dropped.
    #[serde(default)]
    pub add_capabilities: Vec<Capability>,
    /// User inside the container; default: the image's.
    #[serde(default)]
    pub user: Option<UserSpec>,
    /// Podman's user namespace mode, e.g. `keep-id:uid=101,gid=101` to run the image's own
    /// unprivileged user as the service user (so it can read 0600 rendered configs); default:
    /// podman's (the container's root is the service user).
    #[serde(default)]
    pub userns: Option<UserNs>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The shared `archy` bridge, where apps reach each other by container name and alias.
    #[default]
    Archy,
    /// The host's network namespace.
    Host,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// A number, or a string of one (`"{{ network.p2p_port }}"`, after the network's values are in).
    #[serde(deserialize_with = "port_number")]
    pub host: u16,
    #[serde(deserialize_with = "port_number")]
    pub container: u16,
    #[serde(default)]
    pub protocol: Protocol,
    /// Host address to bind; default all addresses.
    #[serde(default)]
    pub address: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default)]
    pub from: VolumeSource,
    /// Below the source directory; default: the directory itself.
    #[serde(default)]
    pub subpath: Option<SubPath>,
    pub target: AbsPath,
    #[serde(default)]
    pub read_only: bool,
    /// With `from = "data"`: another app's data (an app this one requires, by id), below a
    /// directory that app shares; always read-only. Default: this app's own.
    #[serde(default)]
    pub app: Option<Id>,
}

impl Volume {
    /// The app whose data or state this volume mounts.
    pub fn owner<'a>(&'a self, this_app: &'a str) -> &'a str {
        self.app.as_ref().map_or(this_app, Id::as_str)
    }

    /// Whether the container may only read it: secrets and other apps' data always.
    pub fn is_read_only(&self) -> bool {
        self.read_only || self.from == VolumeSource::Secrets || self.app.is_some()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeSource {
    /// `<data_dir>/<id>/`: the app's data, kept when the app is removed.
    #[default]
    Data,
    /// `$XDG_STATE_HOME/archipelago/<id>/`: state archy manages for the app.
    State,
    /// `$XDG_STATE_HOME/archipelago/secrets/`: always mounted read-only.
    Secrets,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependencies {
    /// Apps (ids or provided names) started with this one and before it (`Wants=` + `After=`).
    #[serde(default)]
    pub requires: Vec<Id>,
    /// Apps this one starts after when both start, without pulling them in.
    #[serde(default)]
    pub after: Vec<Id>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Run with `/bin/sh -c` inside the container; exit 0 means healthy.
    pub cmd: Text,
    #[serde(default = "default_interval")]
    pub interval: Duration,
    #[serde(default = "default_start_period")]
    pub start_period: Duration,
    #[serde(default = "default_health_timeout")]
    pub timeout: Duration,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default)]
    pub on_failure: HealthAction,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthAction {
    /// Kill the container; `Restart=` brings it back (the default).
    #[default]
    Kill,
    Restart,
    Stop,
    None,
}

impl HealthAction {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthAction::Kill => "kill",
            HealthAction::Restart => "restart",
            HealthAction::Stop => "stop",
            HealthAction::None => "none",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    #[serde(default)]
    pub restart: RestartPolicy,
    /// First delay before a restart; it grows to `restart_max_delay`.
    #[serde(default = "default_restart_delay")]
    pub restart_delay: Duration,
    #[serde(default = "default_restart_max_delay")]
    pub restart_max_delay: Duration,
    /// How long the container may take to become healthy (or to start, without a health check);
    /// `infinity` for an app that waits for a sync, reported by its check's output meanwhile.
    #[serde(default = "default_start_timeout")]
    pub start_timeout: Timeout,
    /// How long the app may take to stop before it is killed.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: Duration,
    /// Free space the app needs under its data dir; default: node.toml's `disk_reserve`.
    #[serde(default)]
    pub disk_reserve: Option<crate::node::ByteSize>,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            restart: RestartPolicy::default(),
            restart_delay: default_restart_delay(),
            restart_max_delay: default_restart_max_delay(),
            start_timeout: default_start_timeout(),
            stop_timeout: default_stop_timeout(),
            disk_reserve: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    No,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::No => "no",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    /// bitcoind RPC credentials: a user, a password and the `rpcauth=` line.
    Rpcauth,
    /// A random password.
    Password,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Rpcauth => "rpcauth",
            SecretKind::Password => "password",
        }
    }
}

/// A secret as an app declares it: its kind (`bitcoind-rpc = "rpcauth"`), or a table with the
/// kind and whether archy may replace it (`mempool-db = { kind = "password", rotate = false }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretDecl {
    pub kind: SecretKind,
    /// False for a secret something keeps on its own once given (a database's password, set
    /// when the database is created): `archy-hook rotate` refuses it.
    pub rotate: bool,
}

impl<'de> Deserialize<'de> for SecretDecl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            kind: SecretKind,
            #[serde(default = "yes")]
            rotate: bool,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretDecl;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a kind (\"rpcauth\" or \"password\") or a table { kind, rotate }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretDecl, E> {
                let kind = SecretKind::deserialize(serde::de::value::StrDeserializer::new(v))?;
                Ok(SecretDecl { kind, rotate: true })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<SecretDecl, A::Error> {
                let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                Ok(SecretDecl {
                    kind: t.kind,
                    rotate: t.rotate,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// A template in `/usr/share/archipelago/templates/<id>/`.
    pub template: FileName,
    /// Where the rendered file is mounted (read-only) in the container.
    pub target: AbsPath,
}

/// A port as an integer, or as a string of digits: a per-network value is placed into a string.
fn port_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    struct PortVisitor;
    impl serde::de::Visitor<'_> for PortVisitor {
        type Value = u16;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a port number (1 to 65535), or a string of one")
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u16, E> {
            u16::try_from(n)
                .map_err(|_| E::custom(format!("`{n}` is not a port number (1 to 65535)")))
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u16, E> {
            u16::try_from(n)
                .map_err(|_| E::custom(format!("`{n}` is not a port number (1 to 65535)")))
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<u16, E> {
            s.parse::<u16>().map_err(|_| {
                E::custom(format!(
                    "`{}` is not a port number (1 to 65535)",
                    crate::text::one_line(s)
                ))
            })
        }
    }
    d.deserialize_any(PortVisitor)
}

fn yes() -> bool {
    true
}
fn default_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_start_period() -> Duration {
    Duration::from_secs(60)
}
fn default_health_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_retries() -> u32 {
    3
}
fn default_restart_delay() -> Duration {
    Duration::from_secs(5)
}
fn default_restart_max_delay() -> Duration {
    Duration::from_secs(300)
}
fn default_true() -> bool {
    true
}
fn default_start_timeout() -> Timeout {
    Timeout::finite(Duration::from_secs(300))
}
fn default_backup_keep() -> u32 {
    10
}
fn default_init_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_stop_timeout() -> Duration {
    Duration::from_secs(30)
}

/// What an image's own non-root USER, unmapped, means for an app (see `unmapped_image_user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnmappedUser {
    /// It cannot read the app's 0600 configs or its 0700 secrets: the app cannot work.
    Refused(String),
    /// It can read the app's data dir but not write it, which may or may not matter.
    Warning(String),
}

impl Manifest {
    /// What the image's own USER (`image_user`, as podman reports it) means when the manifest
    /// neither names a user (which archy maps the service user to) nor a user namespace.
    /// Rootless, any container uid but 0 is a subordinate id: it cannot read a 0600 file or a
    /// 0700 directory of the service user's, nor write a directory of its.
    pub fn unmapped_image_user(&self, image_user: &str) -> Option<UnmappedUser> {
        let u = image_user.trim();
        let root = u.is_empty() || matches!(u.split(':').next(), Some("0" | "root"));
        let c = &self.container;
        if root || c.user.is_some() || c.userns.is_some() {
            return None;
        }
        let fix = "set [container] user to that user's numeric uid:gid, so archy maps the \
                   service user to it";
        let private =
            !self.config.is_empty() || c.volumes.iter().any(|v| v.from == VolumeSource::Secrets);
        if private {
            return Some(UnmappedUser::Refused(format!(
                "the image runs as user `{u}` (its USER), which cannot read this app's secrets \
                 and configs under rootless podman: {fix}"
            )));
        }
        let writable = c.volumes.iter().any(|v| !v.is_read_only());
        writable.then(|| {
            UnmappedUser::Warning(format!(
                "the image runs as user `{u}` (its USER), which can read but not write this \
                 app's volumes under rootless podman: if it writes them, {fix}"
            ))
        })
    }

    pub fn id(&self) -> &str {
        self.app.id.as_str()
    }

    /// Every name a dependent may use for this app: its id and what it provides.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id()).chain(self.app.provides.iter().map(Id::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_by_kind_or_table() {
        let m: Manifest = toml::from_str(
            "[app]\nid = \"x\"\n[image]\nref = \"r\"\n[secrets]\na = \"rpcauth\"\nb = { kind = \"password\", rotate = false }\nc = { kind = \"password\" }\n",
        )
        .unwrap();
        let get = |n: &str| m.secrets.iter().find(|(k, _)| k.as_str() == n).unwrap().1;
        assert_eq!(
            get("a"),
            &SecretDecl {
                kind: SecretKind::Rpcauth,
                rotate: true
            }
        );
        assert_eq!(
            get("b"),
            &SecretDecl {
                kind: SecretKind::Password,
                rotate: false
            }
        );
        assert!(get("c").rotate);
        for bad in [
            "a = \"pin\"",
            "a = { kind = \"password\", rotat = false }",
            "a = 3",
            "a = { rotate = false }",
        ] {
            let r: Result<Manifest, _> = toml::from_str(&format!(
                "[app]\nid = \"x\"\n[image]\nref = \"r\"\n[secrets]\n{bad}\n"
            ));
            assert!(r.is_err(), "{bad}");
        }
    }

    #[test]
    fn an_image_user_must_be_mapped() {
        let parse = |extra: &str| -> Manifest {
            toml::from_str(&format!("[app]\nid = \"x\"\n[image]\nref = \"r\"\n{extra}")).unwrap()
        };
        let plain = parse("");
        for root in ["", "0", "root", "0:0", "root:root"] {
            assert_eq!(plain.unmapped_image_user(root), None, "{root:?}");
        }
        // nothing mounted: nothing it could not use
        assert_eq!(plain.unmapped_image_user("101"), None);
        let data = parse("[[container.volumes]]\nfrom = \"data\"\ntarget = \"/d\"\n");
        assert!(matches!(
            data.unmapped_image_user("101"),
            Some(UnmappedUser::Warning(_))
        ));
        let secrets = parse("[secrets]\ns = { kind = \"password\", rotate = false }\n[[container.volumes]]\nfrom = \"secrets\"\nsubpath = \"s\"\ntarget = \"/s\"\n");
        match secrets.unmapped_image_user("1000") {
            Some(UnmappedUser::Refused(why)) => {
                assert!(
                    why.contains("user `1000`") && why.contains("[container] user"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
        let config = parse("[[config]]\ntemplate = \"c\"\ntarget = \"/c\"\n");
        assert!(matches!(
            config.unmapped_image_user("nginx"),
            Some(UnmappedUser::Refused(_))
        ));
        let mapped = parse(
            "[container]\nuser = \"1000:1000\"\n[[config]]\ntemplate = \"c\"\ntarget = \"/c\"\n",
        );
        assert_eq!(mapped.unmapped_image_user("1000"), None);
    }
}
