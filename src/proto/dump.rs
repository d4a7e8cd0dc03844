//! DUMP / RESTORE payloads: type byte + value body + u16 LE RDB version + u64 LE CRC64 of
//! everything before the CRC (spec 6.4).

use super::assemble::decode_value;
use super::error::{corrupt, EncodeError, ErrorKind};
use super::event::ValueType;
use super::model::Value;
use super::value::encode_value;
use super::{crc64, Limits};

/// Bytes after the value body: RDB version (2) and CRC64 (8).
pub const FOOTER_LEN: usize = 10;

/// Builds a DUMP payload for `value` encoded as `ty`, stamped with `rdb_version`.
pub fn encode_dump(value: &Value, ty: ValueType, rdb_version: u16) -> Result<Vec<u8>, EncodeError> {
    if ty == ValueType::JsonOld && rdb_version >= 10 || ty == ValueType::SetListpack && rdb_version < 10 {
        return Err(EncodeError::Invalid(format!(
            "type 20 means {} in RDB version {rdb_version}",
            if rdb_version >= 10 { "SET_LISTPACK" } else { "JSON" }
        )));
    }
    let mut out = Vec::with_capacity(64);
    out.push(ty.code());
    encode_value(&mut out, value, ty)?;
    out.extend_from_slice(&rdb_version.to_le_bytes());
    let crc = crc64::checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The type, RDB version and body of a DUMP payload, after checking the CRC (when non-zero).
pub fn split_dump(payload: &[u8]) -> Result<(ValueType, u16, &[u8]), ErrorKind> {
    if payload.len() < 1 + FOOTER_LEN {
        return Err(corrupt("DUMP payload", format_args!("{} bytes is too short", payload.len())));
    }
    let crc_at = payload.len() - 8;
    let mut c = [0u8; 8];
    c.copy_from_slice(&payload[crc_at..]);
    let expected = u64::from_le_bytes(c);
    if expected != 0 {
        let computed = crc64::checksum(&payload[..crc_at]);
        if computed != expected {
            return Err(ErrorKind::Checksum { expected, computed });
        }
    }
    let version = u16::from_le_bytes([payload[crc_at - 2], payload[crc_at - 1]]);
    let code = payload[0];
    let ty = ValueType::from_code(code, u32::from(version)).ok_or(ErrorKind::UnknownType(code))?;
    Ok((ty, version, &payload[1..crc_at - 2]))
}

/// Decodes a DUMP payload (Redis' or Dragonfly's) into a value.
pub fn decode_dump(payload: &[u8], limits: &Limits) -> Result<Value, ErrorKind> {
    let (ty, _, body) = split_dump(payload)?;
    decode_value(ty, body, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn string_payload_layout() {
        let p = encode_dump(&Value::String(Bytes::from("hello")), ValueType::String, 9).unwrap();
        assert_eq!(&p[..9], &[0, 5, b'h', b'e', b'l', b'l', b'o', 9, 0]);
        assert_eq!(p.len(), 17);
        assert_eq!(decode_dump(&p, &Limits::default()), Ok(Value::String(Bytes::from("hello"))));
        let mut bad = p.clone();
        bad[2] = b'j';
        assert!(matches!(decode_dump(&bad, &Limits::default()), Err(ErrorKind::Checksum { .. })));
        // A zero CRC is not checked (Dragonfly may skip it).
        let mut zero = bad;
        let n = zero.len();
        zero[n - 8..].fill(0);
        assert_eq!(decode_dump(&zero, &Limits::default()), Ok(Value::String(Bytes::from("jello"))));
        assert!(decode_dump(&[0, 9, 0], &Limits::default()).is_err());
    }

    #[test]
    fn type_20_follows_the_footer_version() {
        let json = Value::Json(Bytes::from("{\"a\":1}"));
        let p = encode_dump(&json, ValueType::JsonOld, 9).unwrap();
        assert_eq!(p[0], 20);
        assert_eq!(decode_dump(&p, &Limits::default()), Ok(json.clone()));
        assert!(encode_dump(&json, ValueType::JsonOld, 10).is_err());
        let set = Value::Set(vec![Bytes::from("a"), Bytes::from("b")]);
        let p = encode_dump(&set, ValueType::SetListpack, 11).unwrap();
        assert_eq!(p[0], 20);
        assert_eq!(decode_dump(&p, &Limits::default()), Ok(set));
    }
}
