//! Node settings, `/etc/archipelago/node.toml`. Every key has a default, so the file may be absent.

use crate::text::{AbsPath, Id, Text};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// The service user whose systemd manager runs the apps. Default: whoever runs archy.
    #[serde(default)]
    pub user: Option<Text>,
    #[serde(default)]
    pub network: BitcoinNetwork,
    /// The `archy` bridge network's IPv4 subnet; its first address is the gateway and DNS server.
    #[serde(default)]
    pub subnet: Subnet,
    /// Parent of each app's data directory, `<data_dir>/<id>/`.
    #[serde(default = "default_data_dir")]
    pub data_dir: AbsPath,
    /// Where `[[backup]]` copies go, `<backup_dir>/<id>/<name>/`. Default: `<data_dir>/backups`.
    #[serde(default)]
    pub backup_dir: Option<AbsPath>,
    /// Free space every app needs under its data dir before it starts.
    #[serde(default = "default_disk_reserve")]
    pub disk_reserve: ByteSize,
    /// Which app answers to a provided name (`bitcoind = "bitcoin-knots"`); default for bitcoind
    /// is bitcoin-core, for other names the first provider by id.
    #[serde(default)]
    pub providers: BTreeMap<Id, Id>,
    #[serde(default)]
    pub registries: Registries,
    /// Host ports apps may publish without a grant (never below 1024).
    #[serde(default)]
    pub port_range: PortRange,
    /// Privileges beyond archy's defaults, per app id (see `crate::grants`).
    #[serde(default)]
    pub grants: BTreeMap<Id, crate::grants::Grant>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    /// Registries `archy-hook ensure-image` may pull from. Default: none (images are local).
    #[serde(default)]
    pub allowed: Vec<Text>,
    /// Of those, the ones reached without TLS verification.
    #[serde(default)]
    pub insecure: Vec<Text>,
}

impl Default for NodeSettings {
    fn default() -> Self {
        Self {
            user: None,
            network: BitcoinNetwork::default(),
            subnet: Subnet::default(),
            data_dir: default_data_dir(),
            backup_dir: None,
            disk_reserve: default_disk_reserve(),
            providers: BTreeMap::new(),
            registries: Registries::default(),
            port_range: PortRange::default(),
            grants: BTreeMap::new(),
        }
    }
}

impl NodeSettings {
    /// `backup_dir`, or its default below `data_dir` (no app has the id `backups`).
    pub fn backup_dir(&self) -> String {
        match &self.backup_dir {
            Some(d) => d.as_str().to_string(),
            None => format!("{}/{}", self.data_dir, crate::backup::DEFAULT_DIR),
        }
    }

    /// The app node.toml's `[providers]` names for `name`, if any.
    pub fn pinned(&self, name: &str) -> Option<&str> {
        self.providers
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v.as_str())
    }

    /// The app chosen to provide `name`, among `providers` (sorted by id).
    pub fn choose_provider<'a>(&self, name: &str, providers: &[&'a str]) -> Option<&'a str> {
        let wanted = self
            .pinned(name)
            .or((name == "bitcoind").then_some("bitcoin-core"));
        wanted
            .and_then(|w| providers.iter().copied().find(|p| *p == w))
            .or_else(|| providers.first().copied())
    }
}

/// Whether a `user` setting names root, by name or uid.
pub fn is_root(user: &str) -> bool {
    user == "root" || user.parse::<u32>() == Ok(0)
}

fn default_data_dir() -> AbsPath {
    AbsPath::try_from("/var/lib/archipelago".to_string()).expect("valid default")
}

fn default_disk_reserve() -> ByteSize {
    ByteSize(1 << 30)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BitcoinNetwork {
    #[default]
    Mainnet,
    Testnet,
    Testnet4,
    Signet,
    Regtest,
}

impl BitcoinNetwork {
    pub const ALL: [BitcoinNetwork; 5] = [
        BitcoinNetwork::Mainnet,
        BitcoinNetwork::Testnet,
        BitcoinNetwork::Testnet4,
        BitcoinNetwork::Signet,
        BitcoinNetwork::Regtest,
    ];

    /// The network node.toml calls `name`.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BitcoinNetwork::Mainnet => "mainnet",
            BitcoinNetwork::Testnet => "testnet",
            BitcoinNetwork::Testnet4 => "testnet4",
            BitcoinNetwork::Signet => "signet",
            BitcoinNetwork::Regtest => "regtest",
        }
    }

    /// bitcoind's `chain=` value, which is also its config section name.
    pub fn chain(self) -> &'static str {
        match self {
            BitcoinNetwork::Mainnet => "main",
            BitcoinNetwork::Testnet => "test",
            BitcoinNetwork::Testnet4 => "testnet4",
            BitcoinNetwork::Signet => "signet",
            BitcoinNetwork::Regtest => "regtest",
        }
    }
}

/// An IPv4 subnet in CIDR form, `10.89.42.0/24`, with room for a gateway and apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Subnet {
    network: std::net::Ipv4Addr,
    prefix: u8,
}

impl Default for Subnet {
    fn default() -> Self {
        Self {
            network: std::net::Ipv4Addr::new(10, 89, 42, 0),
            prefix: 24,
        }
    }
}

impl Subnet {
    /// The first host address: podman's gateway, where aardvark-dns answers.
    pub fn gateway(self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(u32::from(self.network) + 1)
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an IPv4 subnet such as 10.89.42.0/24 (prefix 8 to 28)");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let network: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=28).contains(&prefix) || u32::from(network) & (u32::MAX >> prefix) != 0 {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Host ports as `first-last`, both included; never below 1024 (those always need a grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl Default for PortRange {
    fn default() -> Self {
        Self {
            first: 1024,
            last: u16::MAX,
        }
    }
}

impl PortRange {
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a port range such as 1024-65535 (from 1024 up)");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if first < 1024 || last < first {
            return Err(bad());
        }
        Ok(Self { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// A size in bytes, written as `500M`, `10G`, `1T` (powers of 1024) or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ByteSize(pub u64);

impl TryFrom<String> for ByteSize {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim().trim_end_matches(['B', 'b']).trim_end_matches('i');
        let (num, shift) = match t.char_indices().last() {
            Some((i, 'K' | 'k')) => (&t[..i], 10),
            Some((i, 'M')) => (&t[..i], 20),
            Some((i, 'G')) => (&t[..i], 30),
            Some((i, 'T')) => (&t[..i], 40),
            _ => (t, 0),
        };
        num.trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1u64 << shift))
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}` is not a size such as 500M, 10G or 1T"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];
        for (shift, unit) in units {
            if self.0 >= 1 << shift {
                return if self.0 % (1 << shift) == 0 {
                    write!(f, "{}{unit}", self.0 >> shift)
                } else {
                    write!(f, "{:.1}{unit}", self.0 as f64 / (1u64 << shift) as f64)
                };
            }
        }
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let s = |x: &str| ByteSize::try_from(x.to_string());
        assert_eq!(s("10G").unwrap().0, 10 << 30);
        assert_eq!(s("500MiB").unwrap().0, 500 << 20);
        assert_eq!(s("123").unwrap().0, 123);
        assert!(s("ten").is_err());
        assert!(s("99999999999T").is_err());
        assert_eq!(s("2G").unwrap().to_string(), "2G");
        assert_eq!(ByteSize(3 << 29).to_string(), "1.5G");
    }

    #[test]
    fn subnets() {
        let n = |x: &str| Subnet::try_from(x.to_string());
        assert_eq!(
            n("10.89.42.0/24").unwrap().gateway().to_string(),
            "10.89.42.1"
        );
        assert_eq!(
            n("192.168.100.0/22").unwrap().to_string(),
            "192.168.100.0/22"
        );
        for bad in [
            "10.89.42.1/24",
            "10.89.42.0",
            "10.89.42.0/31",
            "fd00::/64",
            "x/24",
        ] {
            assert!(n(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn port_ranges() {
        let r = |x: &str| PortRange::try_from(x.to_string());
        let d = PortRange::default();
        assert!(d.contains(1024) && d.contains(65535) && !d.contains(1023));
        let narrow = r("8000-8999").unwrap();
        assert!(narrow.contains(8000) && narrow.contains(8999) && !narrow.contains(9000));
        assert_eq!(narrow.to_string(), "8000-8999");
        for bad in ["80-8000", "9000-8000", "1024", "a-b", "1024-70000"] {
            assert!(r(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn provider_choice() {
        let mut node = NodeSettings::default();
        let both = ["bitcoin-core", "bitcoin-knots"];
        assert_eq!(
            node.choose_provider("bitcoind", &both),
            Some("bitcoin-core")
        );
        assert_eq!(
            node.choose_provider("bitcoind", &["bitcoin-knots"]),
            Some("bitcoin-knots")
        );
        node.providers.insert(
            Id::try_from("bitcoind".to_string()).unwrap(),
            Id::try_from("bitcoin-knots".to_string()).unwrap(),
        );
        assert_eq!(
            node.choose_provider("bitcoind", &both),
            Some("bitcoin-knots")
        );
        assert_eq!(node.choose_provider("other", &["b", "a"]), Some("b"));
    }
}
