//! Number conventions of value bodies: zset score text, the member-TTL time base.

use super::super::error::{corrupt, ErrorKind};

/// Dragonfly's member/field TTL base (2023-02-01 00:00:00 UTC): wire TTLs are seconds since it.
pub const TTL_BASE: i64 = 1_675_209_600;

/// Converts a wire TTL (types 31/32) to absolute Unix seconds (`-1` = no TTL).
pub(crate) fn ttl_from_wire(v: i64) -> Result<Option<i64>, ErrorKind> {
    if v == -1 {
        return Ok(None);
    }
    v.checked_add(TTL_BASE).map(Some).ok_or_else(|| corrupt("member TTL", format_args!("{v} overflows")))
}

/// Converts an absolute TTL (Unix seconds, `None` = no TTL) to the wire value.
pub(crate) fn ttl_to_wire(t: Option<i64>) -> Option<i64> {
    match t {
        None => Some(-1),
        Some(t) => t.checked_sub(TTL_BASE).filter(|&w| w != -1),
    }
}

/// The text a zset listpack/ziplist stores for `score`, as Dragonfly/Redis write it: integral
/// values within int64 as integer text (the listpack then stores an integer), `inf`, `-inf`,
/// `nan`, `-0`, else the shortest text that parses back to the same double (`2.5`, `-1e-300`).
pub fn format_score(score: f64) -> String {
    if score.is_nan() {
        return "nan".into();
    }
    if score.is_infinite() {
        return if score > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if score == 0.0 {
        return if score.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    if score.fract() == 0.0 && score.abs() < 9_223_372_036_854_775_808.0 {
        return (score as i64).to_string();
    }
    shortest(score)
}

/// Shortest round-trip text: plain decimal for magnitudes in [1e-6, 1e21), exponent form outside.
pub(crate) fn shortest(x: f64) -> String {
    let a = x.abs();
    if (1e-6..1e21).contains(&a) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(format_score(2.5), "2.5");
        assert_eq!(format_score(1.0), "1");
        assert_eq!(format_score(-3.0), "-3");
        assert_eq!(format_score(f64::INFINITY), "inf");
        assert_eq!(format_score(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_score(-1e-300), "-1e-300");
        assert_eq!(format_score(1e300), "1e300");
        assert_eq!(format_score(-0.0), "-0");
        assert_eq!(ttl_from_wire(-1), Ok(None));
        assert_eq!(ttl_from_wire(100), Ok(Some(TTL_BASE + 100)));
        assert_eq!(ttl_to_wire(Some(TTL_BASE + 100)), Some(100));
        assert_eq!(ttl_to_wire(None), Some(-1));
        assert_eq!(ttl_to_wire(Some(TTL_BASE - 1)), None);
    }

    proptest! {
        #[test]
        fn score_text_round_trips(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            let t = format_score(x);
            let back: f64 = t.parse().unwrap();
            if x.is_nan() {
                prop_assert!(back.is_nan());
            } else {
                prop_assert_eq!(back.to_bits(), x.to_bits(), "{}", t);
            }
        }
    }
}
