//! What the target (and the source release) can do: versions, RDB version, modules.

use std::fmt;

/// A `major.minor.patch` release number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Version {
    /// Builds a version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version { major, minor, patch }
    }

    /// Parses `7.0.15`, `v1.40.1`, `df-v1.40.1` (missing parts are 0; junk after digits ignored).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix("df-").unwrap_or(s);
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut it = s.split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let major = it.next()??;
        let minor = it.next().flatten().unwrap_or(0);
        let patch = it.next().flatten().unwrap_or(0);
        Some(Version { major, minor, patch })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Finds `field:value` in an `INFO` reply.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':'))).map(str::trim)
}

/// What the Redis target supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCaps {
    /// `redis_version` from INFO SERVER.
    pub version: Version,
    /// Highest RDB version its RESTORE accepts.
    pub rdb_version: u16,
    /// RedisJSON loaded.
    pub json: bool,
    /// RedisBloom loaded.
    pub bloom: bool,
}

impl TargetCaps {
    /// Capabilities of a plain Redis of this version without modules.
    pub fn plain(version: Version) -> Self {
        TargetCaps { version, rdb_version: rdb_version_for(version), json: false, bloom: false }
    }

    /// From the INFO SERVER text and the module names of MODULE LIST.
    pub fn from_info(info_server: &str, modules: &[String]) -> Self {
        let version =
            info_field(info_server, "redis_version").and_then(Version::parse).unwrap_or(Version::new(7, 0, 0));
        let has = |n: &str| modules.iter().any(|m| m.eq_ignore_ascii_case(n));
        TargetCaps {
            version,
            rdb_version: rdb_version_for(version),
            json: has("ReJSON") || has("json"),
            bloom: has("bf") || has("bloom"),
        }
    }

    /// Hash field TTLs (HPEXPIREAT) exist on the target.
    pub fn hash_field_ttl(&self) -> bool {
        self.version >= Version::new(7, 4, 0)
    }

    /// The highest RDB type code the target's RESTORE understands.
    pub fn max_type_code(&self) -> u8 {
        match self.rdb_version {
            0..=8 => 15,
            9 => 15,
            10 => 19,
            11 => 21,
            _ => 24,
        }
    }
}

/// RDB version written (and accepted) by a Redis release.
pub fn rdb_version_for(v: Version) -> u16 {
    match (v.major, v.minor) {
        (0..=4, _) => 8,
        (5 | 6, _) => 9,
        (7, 0 | 1) => 10,
        (7, 2 | 3) => 11,
        _ => 12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(Version::parse("df-v1.40.1"), Some(Version::new(1, 40, 1)));
        assert_eq!(Version::parse("7.0.15"), Some(Version::new(7, 0, 15)));
        assert_eq!(Version::parse("8"), Some(Version::new(8, 0, 0)));
        assert_eq!(Version::parse("x"), None);
        assert!(Version::new(1, 35, 0) > Version::new(1, 34, 9));
    }

    #[test]
    fn caps_from_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n";
        let c = TargetCaps::from_info(info, &[]);
        assert_eq!(c.version, Version::new(7, 0, 15));
        assert_eq!(c.rdb_version, 10);
        assert_eq!(c.max_type_code(), 19);
        assert!(!c.json && !c.hash_field_ttl());
        let c = TargetCaps::from_info("redis_version:7.4.1\n", &["ReJSON".into(), "bf".into()]);
        assert!(c.json && c.bloom && c.hash_field_ttl());
        assert_eq!(c.rdb_version, 12);
        assert_eq!(info_field("a:1\r\nb:2\r\n", "b"), Some("2"));
    }
}
