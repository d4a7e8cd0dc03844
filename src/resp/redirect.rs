//! Parsing of Redis Cluster redirections (`MOVED slot host:port`, `ASK slot host:port`).

/// A cluster redirection carried by an error reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Redirect {
    /// The slot now lives at `addr`; update the slot map and retry there.
    Moved {
        /// Hash slot (0..16384).
        slot: u16,
        /// `host:port` of the owner.
        addr: String,
    },
    /// The slot is being migrated; retry once at `addr` preceded by `ASKING`.
    Ask {
        /// Hash slot (0..16384).
        slot: u16,
        /// `host:port` of the importing node.
        addr: String,
    },
}

impl Redirect {
    /// Parse an error message (with or without the leading `-`). `None` if it is not a redirect.
    ///
    /// An empty host (`MOVED 3999 :6381`, sent when the node does not know its own address) is
    /// returned as is; callers substitute the host they used to reach that node.
    pub fn parse(msg: &str) -> Option<Redirect> {
        let msg = msg.strip_prefix('-').unwrap_or(msg);
        let mut parts = msg.split_ascii_whitespace();
        let kind = parts.next()?;
        let slot: u16 = parts.next()?.parse().ok()?;
        if slot >= crate::target::route::SLOTS {
            return None;
        }
        let addr = parts.next()?;
        if parts.next().is_some() || !addr.contains(':') {
            return None;
        }
        let addr = addr.to_owned();
        match kind {
            "MOVED" => Some(Redirect::Moved { slot, addr }),
            "ASK" => Some(Redirect::Ask { slot, addr }),
            _ => None,
        }
    }

    /// The slot named by the redirect.
    pub fn slot(&self) -> u16 {
        match self {
            Redirect::Moved { slot, .. } | Redirect::Ask { slot, .. } => *slot,
        }
    }

    /// The address named by the redirect.
    pub fn addr(&self) -> &str {
        match self {
            Redirect::Moved { addr, .. } | Redirect::Ask { addr, .. } => addr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Redirect::parse("MOVED 3999 127.0.0.1:6381"),
            Some(Redirect::Moved { slot: 3999, addr: "127.0.0.1:6381".into() })
        );
        assert_eq!(Redirect::parse("-ASK 0 [::1]:7000"), Some(Redirect::Ask { slot: 0, addr: "[::1]:7000".into() }));
        assert_eq!(Redirect::parse("MOVED 16384 h:1"), None);
        assert_eq!(Redirect::parse("ERR wrong"), None);
        assert_eq!(Redirect::parse("MOVED x h:1"), None);
        assert_eq!(Redirect::parse("MOVED 1 h:1 extra"), None);
        assert_eq!(Redirect::parse("MOVED 1"), None);
        assert_eq!(Redirect::parse("MOVED 12 :7001").map(|r| r.slot()), Some(12));
    }
}
