//! The `Cmd` builder: a command encoded straight into RESP2 bytes, plus the raw encoders it uses.

use bytes::{BufMut, Bytes, BytesMut};

/// A command (an array of bulk strings), encoded as its arguments are added.
///
/// ```
/// use df2redis::resp::Cmd;
/// let cmd = Cmd::new("SET").arg("key").arg(&b"\x00binary"[..]).arg("EX").arg(60);
/// assert_eq!(cmd.argc(), 5);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    argc: usize,
    body: BytesMut,
}

impl Cmd {
    /// A command whose first argument is `name`.
    pub fn new(name: impl Arg) -> Self {
        Cmd::with_capacity(64).arg(name)
    }

    /// An empty command (no arguments yet) with room for `bytes` encoded bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        Cmd { argc: 0, body: BytesMut::with_capacity(bytes) }
    }

    /// Append one argument.
    #[must_use]
    pub fn arg(mut self, a: impl Arg) -> Self {
        self.push_arg(a);
        self
    }

    /// Append one argument in place.
    pub fn push_arg(&mut self, a: impl Arg) -> &mut Self {
        a.write_arg(&mut self.body);
        self.argc += 1;
        self
    }

    /// Append every item of `args`.
    #[must_use]
    pub fn args<A: Arg>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        for a in args {
            self.push_arg(a);
        }
        self
    }

    /// Number of arguments (including the command name).
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// Exact number of bytes [`Cmd::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        1 + decimal_len(self.argc as i64) + 2 + self.body.len()
    }

    /// Append the RESP2 encoding (`*argc\r\n` + the arguments) to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        out.put_u8(b'*');
        put_decimal(out, self.argc as i64);
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
    }

    /// The full encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out.freeze()
    }

    /// The first argument (the command name), if any.
    pub fn name(&self) -> Option<&[u8]> {
        let body = &self.body[..];
        let nl = body.iter().position(|&c| c == b'\n')?;
        let len: usize = std::str::from_utf8(body.get(1..nl.checked_sub(1)?)?).ok()?.parse().ok()?;
        body.get(nl + 1..nl + 1 + len)
    }
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments may be secrets (AUTH) or huge values: show only the name and the size.
        f.debug_struct("Cmd")
            .field("name", &self.name().map(String::from_utf8_lossy))
            .field("argc", &self.argc)
            .field("bytes", &self.body.len())
            .finish()
    }
}

/// Something that can be a command argument (encoded as a bulk string).
pub trait Arg {
    /// Append `$len\r\n<bytes>\r\n` to `out`.
    fn write_arg(&self, out: &mut BytesMut);
}

impl<T: Arg + ?Sized> Arg for &T {
    fn write_arg(&self, out: &mut BytesMut) {
        (**self).write_arg(out)
    }
}

impl Arg for [u8] {
    fn write_arg(&self, out: &mut BytesMut) {
        put_bulk(out, self)
    }
}

impl<const N: usize> Arg for [u8; N] {
    fn write_arg(&self, out: &mut BytesMut) {
        put_bulk(out, self)
    }
}

impl Arg for str {
    fn write_arg(&self, out: &mut BytesMut) {
        put_bulk(out, self.as_bytes())
    }
}

impl Arg for String {
    fn write_arg(&self, out: &mut BytesMut) {
        put_bulk(out, self.as_bytes())
    }
}

impl Arg for Vec<u8> {
    fn write_arg(&self, out: &mut BytesMut) {
        put_bulk(out, self)
    }
}

impl Arg for Bytes {
    fn write_arg(&self, out: &mut BytesMut) {
        put_bulk(out, self)
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn write_arg(&self, out: &mut BytesMut) {
                let mut tmp = [0u8; 24];
                #[allow(unused_comparisons)]
                let s = format_decimal(&mut tmp, *self < 0, (*self as i128).unsigned_abs() as u64);
                put_bulk(out, s)
            }
        }
    )*};
}
int_arg!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Arg for usize {
    fn write_arg(&self, out: &mut BytesMut) {
        (*self as u64).write_arg(out)
    }
}

impl Arg for f64 {
    /// Shortest representation that round-trips (`inf` / `-inf` as Redis spells them).
    fn write_arg(&self, out: &mut BytesMut) {
        if self.is_infinite() {
            put_bulk(out, if *self > 0.0 { b"inf" } else { b"-inf" })
        } else {
            put_bulk(out, format!("{self}").as_bytes())
        }
    }
}

/// Append one bulk string.
pub fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    // Header built on the stack so the buffer sees three copies and one capacity check.
    let mut tmp = [0u8; 24];
    let digits = format_decimal(&mut tmp, false, b.len() as u64);
    let mut head = [0u8; 32];
    head[0] = b'$';
    head[1..1 + digits.len()].copy_from_slice(digits);
    head[1 + digits.len()..3 + digits.len()].copy_from_slice(b"\r\n");
    out.reserve(3 + digits.len() + b.len() + 2);
    out.extend_from_slice(&head[..3 + digits.len()]);
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// Append a whole command given as argument slices (no intermediate allocation).
pub fn encode_command<A: AsRef<[u8]>>(out: &mut BytesMut, args: &[A]) {
    out.put_u8(b'*');
    put_decimal(out, args.len() as i64);
    out.put_slice(b"\r\n");
    for a in args {
        put_bulk(out, a.as_ref());
    }
}

/// Append the decimal digits of `v`.
pub fn put_decimal(out: &mut BytesMut, v: i64) {
    let mut tmp = [0u8; 24];
    out.put_slice(format_decimal(&mut tmp, v < 0, v.unsigned_abs()));
}

/// Digits of `mag` (with a leading `-` if `neg`): 20 digits + sign fit in 24 bytes.
fn format_decimal(tmp: &mut [u8; 24], neg: bool, mag: u64) -> &[u8] {
    let mut n = mag;
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        tmp[i] = b'-';
    }
    &tmp[i..]
}

fn decimal_len(v: i64) -> usize {
    let mut tmp = [0u8; 24];
    format_decimal(&mut tmp, v < 0, v.unsigned_abs()).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_redis() {
        let c = Cmd::new("SET").arg("k").arg(&b"v\r\n"[..]).arg(-12i64).arg(7u64).arg(1.5f64);
        let b = c.to_bytes();
        assert_eq!(&b[..], &b"*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$3\r\n-12\r\n$1\r\n7\r\n$3\r\n1.5\r\n"[..]);
        assert_eq!(b.len(), c.encoded_len());
        assert_eq!(c.name(), Some(&b"SET"[..]));
    }

    #[test]
    fn extremes() {
        let c = Cmd::new("X").arg(i64::MIN).arg(u64::MAX).arg(f64::NEG_INFINITY).arg(0u8);
        let s = String::from_utf8(c.to_bytes().to_vec()).unwrap();
        assert!(s.contains("-9223372036854775808"));
        assert!(s.contains("18446744073709551615"));
        assert!(s.contains("$4\r\n-inf"));
        assert!(s.ends_with("$1\r\n0\r\n"));
    }

    #[test]
    fn raw_encoder_matches_builder() {
        let mut out = BytesMut::new();
        encode_command(&mut out, &[&b"GET"[..], b"key"]);
        assert_eq!(&out[..], &Cmd::new("GET").arg("key").to_bytes()[..]);
    }

    #[test]
    fn debug_hides_arguments() {
        let c = Cmd::new("AUTH").arg("secret");
        assert!(!format!("{c:?}").contains("secret"));
    }
}
