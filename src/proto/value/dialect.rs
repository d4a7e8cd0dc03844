//! Which type byte a writer of a given era uses for a value: Dragonfly releases (spec 8.1
//! "Value-type emission summary") and Redis RDB versions (what `RESTORE` accepts).

use super::super::error::EncodeError;
use super::super::event::ValueType;
use super::super::model::Value;
use super::super::string::canonical_int;
use bytes::Bytes;

/// Largest container written as a listpack / ziplist.
pub(crate) const SMALL_ENTRIES: usize = 128;
/// Largest element of a container written as a listpack / ziplist.
pub(crate) const SMALL_ELEMENT: usize = 64;
/// Largest all-integer set written as an intset.
pub(crate) const INTSET_ENTRIES: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Dragonfly { major: u32, minor: u32 },
    Redis { rdb_version: u16 },
}

/// The writer whose conventions [`choose_type`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    target: Target,
}

impl Dialect {
    /// A Dragonfly master of release `major.minor`.
    pub fn dragonfly(major: u32, minor: u32) -> Dialect {
        Dialect { target: Target::Dragonfly { major, minor } }
    }

    /// A Redis server whose `RESTORE` accepts RDB version `rdb_version` (7.0 = 10, 7.2 = 11).
    pub fn redis(rdb_version: u16) -> Dialect {
        Dialect { target: Target::Redis { rdb_version } }
    }

    /// The RDB version this dialect puts in DUMP footers (Dragonfly always says 9).
    pub fn rdb_version(&self) -> u16 {
        match self.target {
            Target::Dragonfly { .. } => 9,
            Target::Redis { rdb_version } => rdb_version,
        }
    }

    /// Whether this is a Redis dialect.
    pub fn is_redis(&self) -> bool {
        matches!(self.target, Target::Redis { .. })
    }

    fn df_before(major: u32, minor: u32, m: u32, n: u32) -> bool {
        (major, minor) < (m, n)
    }
}

fn small<'a>(len: usize, mut elems: impl Iterator<Item = &'a Bytes>) -> bool {
    len <= SMALL_ENTRIES && elems.all(|e| e.len() <= SMALL_ELEMENT)
}

fn intset_ok(v: &[Bytes]) -> bool {
    !v.is_empty() && v.len() <= INTSET_ENTRIES && v.iter().all(|m| canonical_int(m).is_some())
}

fn unsupported(value: &Value, dialect: &Dialect) -> EncodeError {
    EncodeError::Invalid(format!("a {} value has no encoding in {:?}", value.kind_name(), dialect.target))
}

/// The type byte `dialect` would write `value` with; an error when it cannot hold the value
/// (for example JSON or Bloom filters for Redis, or a type newer than the Dragonfly release).
pub fn choose_type(value: &Value, dialect: &Dialect) -> Result<ValueType, EncodeError> {
    use ValueType as T;
    match dialect.target {
        Target::Redis { rdb_version: r } => Ok(match value {
            Value::String(_) => T::String,
            Value::List(_) if r >= 10 => T::ListQuicklist2,
            Value::List(_) => T::ListQuicklist,
            Value::Set(v) if intset_ok(v) => T::SetIntset,
            Value::Set(v) if r >= 11 && small(v.len(), v.iter()) => T::SetListpack,
            Value::Set(_) => T::Set,
            Value::Hash(v) if small(v.len(), v.iter().flat_map(|(f, x)| [f, x])) => {
                if r >= 10 {
                    T::HashListpack
                } else {
                    T::HashZiplist
                }
            }
            Value::Hash(_) => T::Hash,
            Value::Zset(v) if small(v.len(), v.iter().map(|(m, _)| m)) => {
                if r >= 10 {
                    T::ZsetListpack
                } else {
                    T::ZsetZiplist
                }
            }
            Value::Zset(_) => T::Zset2,
            Value::Stream(_) if r >= 11 => T::StreamListpacks3,
            Value::Stream(_) if r >= 10 => T::StreamListpacks2,
            Value::Stream(_) => T::StreamListpacks,
            Value::Module(_) => T::Module2,
            _ => return Err(unsupported(value, dialect)),
        }),
        Target::Dragonfly { major, minor } => {
            let before = |m, n| Dialect::df_before(major, minor, m, n);
            Ok(match value {
                Value::String(_) => T::String,
                Value::List(_) if before(1, 24) => T::ListQuicklist,
                Value::List(_) => T::ListQuicklist2,
                Value::Set(v) if intset_ok(v) => T::SetIntset,
                Value::Set(_) => T::Set,
                Value::SetWithTtl(_) if !before(1, 13) => T::SetWithExpiry,
                Value::HashWithTtl(_) if !before(1, 13) => T::HashWithExpiry,
                Value::Hash(v) if small(v.len(), v.iter().flat_map(|(f, x)| [f, x])) => {
                    if before(1, 31) {
                        T::HashZiplist
                    } else {
                        T::HashListpack
                    }
                }
                Value::Hash(_) => T::Hash,
                Value::Zset(v) if small(v.len(), v.iter().map(|(m, _)| m)) => {
                    if before(1, 31) {
                        T::ZsetZiplist
                    } else {
                        T::ZsetListpack
                    }
                }
                Value::Zset(_) => T::Zset2,
                Value::Stream(_) if before(1, 27) => T::StreamListpacks,
                Value::Stream(_) => T::StreamListpacks3,
                Value::Json(_) if before(1, 15) => T::JsonOld,
                Value::Json(_) => T::Json,
                Value::Sbf(_) if before(1, 17) => return Err(unsupported(value, dialect)),
                Value::Sbf(_) if before(1, 39) => T::Sbf,
                Value::Sbf(_) => T::Sbf2,
                Value::Cms(_) if !before(1, 38) => T::Cms,
                Value::TopK(_) if !before(1, 38) => T::TopK,
                Value::Cuckoo(_) if !before(1, 40) => T::Cuckoo,
                _ => return Err(unsupported(value, dialect)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn dragonfly_eras() {
        let list = Value::List(vec![b("a")]);
        assert_eq!(choose_type(&list, &Dialect::dragonfly(1, 23)), Ok(ValueType::ListQuicklist));
        assert_eq!(choose_type(&list, &Dialect::dragonfly(1, 24)), Ok(ValueType::ListQuicklist2));
        let hash = Value::Hash(vec![(b("f"), b("v"))]);
        assert_eq!(choose_type(&hash, &Dialect::dragonfly(1, 30)), Ok(ValueType::HashZiplist));
        assert_eq!(choose_type(&hash, &Dialect::dragonfly(1, 31)), Ok(ValueType::HashListpack));
        let big = Value::Hash(vec![(b("f"), Bytes::from(vec![b'x'; 65]))]);
        assert_eq!(choose_type(&big, &Dialect::dragonfly(1, 31)), Ok(ValueType::Hash));
        let many = Value::Zset((0..129).map(|i| (b(&i.to_string()), 1.0)).collect());
        assert_eq!(choose_type(&many, &Dialect::dragonfly(1, 40)), Ok(ValueType::Zset2));
        let ints = Value::Set(vec![b("1"), b("2")]);
        assert_eq!(choose_type(&ints, &Dialect::dragonfly(1, 40)), Ok(ValueType::SetIntset));
        let strs = Value::Set(vec![b("1"), b("x")]);
        assert_eq!(choose_type(&strs, &Dialect::dragonfly(1, 40)), Ok(ValueType::Set));
        let stream = Value::Stream(Box::default());
        assert_eq!(choose_type(&stream, &Dialect::dragonfly(1, 26)), Ok(ValueType::StreamListpacks));
        assert_eq!(choose_type(&stream, &Dialect::dragonfly(1, 27)), Ok(ValueType::StreamListpacks3));
        let json = Value::Json(b("{}"));
        assert_eq!(choose_type(&json, &Dialect::dragonfly(1, 14)), Ok(ValueType::JsonOld));
        assert_eq!(choose_type(&json, &Dialect::dragonfly(1, 15)), Ok(ValueType::Json));
        assert_eq!(Dialect::dragonfly(1, 40).rdb_version(), 9);
    }

    #[test]
    fn redis_versions() {
        let r10 = Dialect::redis(10);
        let r11 = Dialect::redis(11);
        let strs = Value::Set(vec![b("a")]);
        assert_eq!(choose_type(&strs, &r10), Ok(ValueType::Set));
        assert_eq!(choose_type(&strs, &r11), Ok(ValueType::SetListpack));
        let s = Value::Stream(Box::default());
        assert_eq!(choose_type(&s, &r10), Ok(ValueType::StreamListpacks2));
        assert_eq!(choose_type(&s, &r11), Ok(ValueType::StreamListpacks3));
        assert!(choose_type(&Value::Json(b("1")), &r10).is_err());
        assert!(choose_type(&Value::SetWithTtl(vec![]), &r11).is_err());
        assert_eq!(choose_type(&Value::List(vec![]), &Dialect::redis(9)), Ok(ValueType::ListQuicklist));
        assert!(r10.is_redis());
    }
}
