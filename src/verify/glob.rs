//! Redis-style glob matching (`*`, `?`, `[abc]`, `[^a-z]`, `\x`), as SCAN MATCH does it, for
//! filters applied on our side (several patterns, the target→source direction).

/// True when `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with backtracking to the last `*`.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if let Some(step) = single(pattern, p, text[t]) {
            match step {
                Step::Star => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Step::Matched(np) => {
                    p = np;
                    t += 1;
                    continue;
                }
                Step::Failed => {}
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pattern.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pattern.len()
}

enum Step {
    Star,
    Matched(usize),
    Failed,
}

/// Matches one pattern token at `p` against byte `c`; `None` when the pattern is exhausted.
fn single(pat: &[u8], p: usize, c: u8) -> Option<Step> {
    let &tok = pat.get(p)?;
    Some(match tok {
        b'*' => Step::Star,
        b'?' => Step::Matched(p + 1),
        b'\\' if p + 1 < pat.len() => {
            if pat[p + 1] == c {
                Step::Matched(p + 2)
            } else {
                Step::Failed
            }
        }
        b'[' => {
            let mut i = p + 1;
            let negate = pat.get(i) == Some(&b'^');
            if negate {
                i += 1;
            }
            let mut hit = false;
            while i < pat.len() && pat[i] != b']' {
                if pat[i] == b'\\' && i + 1 < pat.len() {
                    hit |= pat[i + 1] == c;
                    i += 2;
                } else if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
                    let (lo, hi) = if pat[i] <= pat[i + 2] { (pat[i], pat[i + 2]) } else { (pat[i + 2], pat[i]) };
                    hit |= (lo..=hi).contains(&c);
                    i += 3;
                } else {
                    hit |= pat[i] == c;
                    i += 1;
                }
            }
            // An unterminated class behaves as if closed at the end (like Redis).
            let next = if i < pat.len() { i + 1 } else { i };
            if hit != negate {
                Step::Matched(next)
            } else {
                Step::Failed
            }
        }
        lit => {
            if lit == c {
                Step::Matched(p + 1)
            } else {
                Step::Failed
            }
        }
    })
}

/// A set of patterns: a key passes when it matches any (or when there are none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns(pub Vec<Vec<u8>>);

impl Patterns {
    /// From user strings; each may hold several patterns separated by `|` (the Go tool's form).
    pub fn parse(list: &[String]) -> Patterns {
        Patterns(
            list.iter()
                .flat_map(|s| s.split('|'))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec())
                .collect(),
        )
    }

    /// The single pattern to push down into SCAN MATCH, if there is exactly one.
    pub fn scan_match(&self) -> Option<&[u8]> {
        match self.0.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// True when `key` passes.
    pub fn accepts(&self, key: &[u8]) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| matches(p, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_glob_cases() {
        let yes = [
            ("*", ""),
            ("*", "abc"),
            ("user:*", "user:1"),
            ("h?llo", "hello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("a*b*c", "axxbyyc"),
            ("a\\*b", "a*b"),
            ("*:1", "x:y:1"),
        ];
        let no = [
            ("user:*", "usr:1"),
            ("h?llo", "hllo"),
            ("h[ae]llo", "hillo"),
            ("h[^e]llo", "hello"),
            ("a\\*b", "axb"),
            ("a*b*c", "axxbyy"),
            ("abc", "abcd"),
        ];
        for (p, t) in yes {
            assert!(matches(p.as_bytes(), t.as_bytes()), "{p} ~ {t}");
        }
        for (p, t) in no {
            assert!(!matches(p.as_bytes(), t.as_bytes()), "{p} !~ {t}");
        }
    }

    #[test]
    fn pattern_sets() {
        let p = Patterns::parse(&["user:*|session:*".to_string(), "x".to_string()]);
        assert_eq!(p.0.len(), 3);
        assert!(p.scan_match().is_none());
        assert!(p.accepts(b"session:9") && p.accepts(b"x") && !p.accepts(b"order:1"));
        assert!(Patterns::default().accepts(b"anything"));
        assert_eq!(Patterns::parse(&["a*".to_string()]).scan_match(), Some(&b"a*"[..]));
    }
}
