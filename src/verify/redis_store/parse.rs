//! Reply parsing: RESP2 frames of TYPE / PTTL / GET / LRANGE / SSCAN / HSCAN / ZRANGE WITHSCORES
//! / XRANGE / HMGET / SMISMEMBER into verify's model.

use crate::resp::Frame;
use crate::verify::model::{Content, StreamEntry};
use bytes::Bytes;

/// A reply that does not have the expected shape; the string names what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpected(pub String);

fn bad(what: &str, f: &Frame) -> Unexpected {
    let mut s = f.to_string_lossy();
    s.truncate(120);
    Unexpected(format!("expected {what}, got {s}"))
}

/// A bulk / simple string.
pub fn bytes(f: &Frame) -> Result<Bytes, Unexpected> {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => Ok(b.clone()),
        _ => Err(bad("a string", f)),
    }
}

/// An integer.
pub fn int(f: &Frame) -> Result<i64, Unexpected> {
    match f {
        Frame::Integer(i) => Ok(*i),
        _ => Err(bad("an integer", f)),
    }
}

fn array(f: &Frame) -> Result<&[Frame], Unexpected> {
    f.as_array().ok_or_else(|| bad("an array", f))
}

fn strings(f: &Frame) -> Result<Vec<Bytes>, Unexpected> {
    array(f)?.iter().map(bytes).collect()
}

/// A score as Redis/Dragonfly print it (`1.5`, `inf`, `-inf`, `1e+20`).
pub fn score(f: &Frame) -> Result<f64, Unexpected> {
    let b = bytes(f)?;
    std::str::from_utf8(&b)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|x| !x.is_nan())
        .ok_or_else(|| bad("a score", f))
}

/// LRANGE.
pub fn list(f: &Frame) -> Result<Content, Unexpected> {
    Ok(Content::List(strings(f)?))
}

/// `[cursor, [elements]]` of SSCAN / HSCAN.
pub fn scan_reply(f: &Frame) -> Result<(u64, &[Frame]), Unexpected> {
    match array(f)? {
        [c, items] => {
            let c = bytes(c)?;
            let cursor = std::str::from_utf8(&c).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("a cursor", f))?;
            Ok((cursor, array(items)?))
        }
        _ => Err(bad("[cursor, elements]", f)),
    }
}

/// SSCAN elements → set members (unsorted).
pub fn set_members(items: &[Frame]) -> Result<Vec<Bytes>, Unexpected> {
    items.iter().map(bytes).collect()
}

/// HSCAN / HGETALL flat field-value list → pairs (unsorted).
pub fn pairs(items: &[Frame]) -> Result<Vec<(Bytes, Bytes)>, Unexpected> {
    if items.len() % 2 != 0 {
        return Err(Unexpected("odd field/value list".into()));
    }
    items.chunks_exact(2).map(|p| Ok((bytes(&p[0])?, bytes(&p[1])?))).collect()
}

/// ZRANGE .. WITHSCORES (RESP2 flat list; also accepts RESP3-style nested pairs).
pub fn zset(f: &Frame) -> Result<Content, Unexpected> {
    let items = array(f)?;
    if items.first().is_some_and(|x| x.as_array().is_some()) {
        return items
            .iter()
            .map(|p| match array(p)? {
                [m, s] => Ok((bytes(m)?, score(s)?)),
                _ => Err(bad("[member, score]", p)),
            })
            .collect::<Result<_, _>>()
            .map(Content::Zset);
    }
    if items.len() % 2 != 0 {
        return Err(bad("member/score pairs", f));
    }
    items.chunks_exact(2).map(|p| Ok((bytes(&p[0])?, score(&p[1])?))).collect::<Result<_, _>>().map(Content::Zset)
}

/// A stream id `ms-seq`.
pub fn stream_id(b: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(b).ok()?;
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// XRANGE.
pub fn stream(f: &Frame) -> Result<Vec<StreamEntry>, Unexpected> {
    array(f)?
        .iter()
        .map(|e| match array(e)? {
            [id, fields] => {
                let id = bytes(id)?;
                let (ms, seq) = stream_id(&id).ok_or_else(|| bad("a stream id", e))?;
                let fields = if fields.is_null() { Vec::new() } else { strings(fields)? };
                Ok(StreamEntry { ms, seq, fields })
            }
            _ => Err(bad("[id, fields]", e)),
        })
        .collect()
}

/// HMGET → values (`None` = field absent).
pub fn optional_strings(f: &Frame) -> Result<Vec<Option<Bytes>>, Unexpected> {
    array(f)?
        .iter()
        .map(|x| match x {
            Frame::Null => Ok(None),
            other => bytes(other).map(Some),
        })
        .collect()
}

/// SMISMEMBER → `Some(empty)` for members, `None` otherwise.
pub fn membership(f: &Frame) -> Result<Vec<Option<Bytes>>, Unexpected> {
    array(f)?.iter().map(|x| Ok((int(x)? == 1).then(Bytes::new))).collect()
}

/// `INFO keyspace` → (db, keys).
pub fn keyspace(info: &[u8]) -> Vec<(u32, u64)> {
    let text = String::from_utf8_lossy(info);
    text.lines()
        .filter_map(|l| {
            let (db, rest) = l.trim().split_once(':')?;
            let db: u32 = db.strip_prefix("db")?.parse().ok()?;
            let keys = rest.split(',').find_map(|kv| kv.strip_prefix("keys="))?.parse().ok()?;
            Some((db, keys))
        })
        .collect()
}

/// `INFO` field value, e.g. `cluster_enabled`.
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn shapes() {
        let z = Frame::Array(vec![bulk("a"), bulk("1.5"), bulk("b"), bulk("inf")]);
        assert_eq!(zset(&z).unwrap(), Content::Zset(vec![(Bytes::from("a"), 1.5), (Bytes::from("b"), f64::INFINITY)]));
        assert!(zset(&Frame::Array(vec![bulk("a")])).is_err());
        let scan = Frame::Array(vec![bulk("17"), Frame::Array(vec![bulk("f"), bulk("v")])]);
        let (c, items) = scan_reply(&scan).unwrap();
        assert_eq!(c, 17);
        assert_eq!(pairs(items).unwrap(), vec![(Bytes::from("f"), Bytes::from("v"))]);
        let x = Frame::Array(vec![Frame::Array(vec![bulk("5-1"), Frame::Array(vec![bulk("f"), bulk("v")])])]);
        assert_eq!(stream(&x).unwrap()[0].id_text(), "5-1");
        assert_eq!(
            membership(&Frame::Array(vec![Frame::Integer(1), Frame::Integer(0)])).unwrap(),
            vec![Some(Bytes::new()), None]
        );
        assert_eq!(
            optional_strings(&Frame::Array(vec![bulk("v"), Frame::Null])).unwrap(),
            vec![Some(Bytes::from("v")), None]
        );
        assert!(int(&Frame::Error(Bytes::from("WRONGTYPE"))).is_err());
    }

    #[test]
    fn info_parsing() {
        let ks = "# Keyspace\r\ndb0:keys=10,expires=0,avg_ttl=0\r\ndb5:keys=3,expires=1,avg_ttl=9\r\n";
        assert_eq!(keyspace(ks.as_bytes()), vec![(0, 10), (5, 3)]);
        assert_eq!(info_field("# Cluster\r\ncluster_enabled:1\r\n", "cluster_enabled"), Some("1"));
        assert_eq!(stream_id(b"1-2"), Some((1, 2)));
        assert_eq!(stream_id(b"x"), None);
    }
}
