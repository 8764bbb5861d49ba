//! Durations as the manifest writes them ("30s", "5min", "1h30min"), checked to be something both
//! systemd and podman read the same way, and converted for each.

use serde::Deserialize;
use std::fmt;

/// A non-negative duration with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Duration {
    millis: u64,
}

const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("min", 60_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Self { millis: s * 1000 }
    }

    pub fn as_millis(self) -> u64 {
        self.millis
    }

    /// For systemd time spans (`RestartSec=`, `TimeoutStartSec=`): e.g. `90s` or `1500ms`.
    pub fn systemd(self) -> String {
        if self.millis % 1000 == 0 {
            format!("{}s", self.millis / 1000)
        } else {
            format!("{}ms", self.millis)
        }
    }

    /// For podman (Go `time.ParseDuration`): e.g. `90s` or `1500ms`; Go has no `min`.
    pub fn podman(self) -> String {
        self.systemd()
    }

    /// Whole seconds, rounded up, for podman's `--stop-timeout`.
    pub fn whole_secs(self) -> u64 {
        self.millis.div_ceil(1000)
    }
}

impl TryFrom<String> for Duration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse(&s).ok_or_else(|| format!("`{s}` is not a duration such as 30s, 5min, 1h or 1h30min"))
    }
}

fn parse(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() || rest.len() > 32 {
        return None;
    }
    let mut millis: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, factor) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        millis = millis.checked_add(n.checked_mul(*factor)?)?;
    }
    // a day of timeout is already absurd; beyond a year is surely a typo
    (millis <= 366 * 86_400_000).then_some(Duration { millis })
}

/// A start timeout: a duration, or `infinity` for an app that may wait as long as it must (for
/// bitcoind's initial sync, say) without being killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Timeout(Option<Duration>);

impl Timeout {
    pub const fn finite(d: Duration) -> Self {
        Self(Some(d))
    }

    pub const INFINITE: Timeout = Timeout(None);

    /// None for `infinity`.
    pub fn duration(self) -> Option<Duration> {
        self.0
    }

    /// For systemd (`TimeoutStartSec=`): `90s` or `infinity`.
    pub fn systemd(self) -> String {
        self.0.map_or("infinity".to_string(), Duration::systemd)
    }

    /// The longer of this and `d`.
    pub fn at_least(self, d: Duration) -> Self {
        Self(self.0.map(|t| t.max(d)))
    }
}

impl TryFrom<String> for Timeout {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.trim() == "infinity" {
            return Ok(Self::INFINITE);
        }
        parse(&s).map(|d| Self(Some(d))).ok_or_else(|| {
            format!("`{s}` is not a duration such as 30s, 5min, 1h or 1h30min, or `infinity`")
        })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.systemd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<Duration, String> {
        Duration::try_from(s.to_string())
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(d("30s").unwrap().systemd(), "30s");
        assert_eq!(d("5min").unwrap().systemd(), "300s");
        assert_eq!(d("5m").unwrap().systemd(), "300s");
        assert_eq!(d("1h30min").unwrap().systemd(), "5400s");
        assert_eq!(d("1500ms").unwrap().systemd(), "1500ms");
        assert_eq!(d("1500ms").unwrap().whole_secs(), 2);
    }

    #[test]
    fn timeouts() {
        let t = |s: &str| Timeout::try_from(s.to_string());
        assert_eq!(t("infinity").unwrap().systemd(), "infinity");
        assert_eq!(
            t("infinity").unwrap().at_least(d("1h").unwrap()),
            Timeout::INFINITE
        );
        assert_eq!(
            t("5min").unwrap().at_least(d("1h").unwrap()).systemd(),
            "3600s"
        );
        assert_eq!(
            t("2h").unwrap().at_least(d("1h").unwrap()).systemd(),
            "7200s"
        );
        assert!(t("forever").unwrap_err().contains("infinity"));
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "30",
            "s",
            "-1s",
            "1 s x",
            "1y",
            "99999999999999999999s",
            "400d",
            "1s;x",
        ] {
            assert!(d(bad).is_err(), "{bad:?} accepted");
        }
    }
}
