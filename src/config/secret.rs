//! Secrets (passwords) that never show up in `Debug`/`Display` output, and where they come from.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret string. `Debug` and `Display` print `***`; only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it (AUTH).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a password could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// `passwordFile` could not be read.
    #[error("password file {path}: {reason}")]
    File {
        /// The file named in the config.
        path: PathBuf,
        /// The I/O error, as text.
        reason: String,
    },
    /// `passwordEnv` names a variable that is unset or not UTF-8.
    #[error("environment variable {name} (named by passwordEnv) is not set")]
    Env {
        /// The variable's name.
        name: String,
    },
    /// More than one of `password`, `passwordFile`, `passwordEnv` was given.
    #[error("give at most one of password, passwordFile, passwordEnv")]
    Ambiguous,
}

/// Reads a password file: its content without one trailing newline (`\n` or `\r\n`).
pub fn read_password_file(path: &Path) -> Result<Secret, SecretError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SecretError::File { path: path.to_path_buf(), reason: e.to_string() })?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    Ok(Secret::new(text))
}

/// Resolves a password from its three possible sources, at most one of which may be set.
/// An empty inline password means "no password" (the Go tool's samples write `password: ""`).
pub fn resolve(inline: Option<&str>, file: Option<&Path>, env: Option<&str>) -> Result<Option<Secret>, SecretError> {
    let inline = inline.filter(|p| !p.is_empty());
    let given = usize::from(inline.is_some()) + usize::from(file.is_some()) + usize::from(env.is_some());
    if given > 1 {
        return Err(SecretError::Ambiguous);
    }
    if let Some(p) = inline {
        return Ok(Some(Secret::new(p)));
    }
    if let Some(path) = file {
        return read_password_file(path).map(Some);
    }
    if let Some(name) = env {
        return match std::env::var(name) {
            Ok(v) => Ok(Some(Secret::new(v))),
            Err(_) => Err(SecretError::Env { name: name.to_string() }),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn password_file_loses_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\r\n").unwrap();
        assert_eq!(read_password_file(&p).unwrap().expose(), "s3cret");
        std::fs::write(&p, "a\n\n").unwrap();
        assert_eq!(read_password_file(&p).unwrap().expose(), "a\n");
    }

    #[test]
    fn resolve_rules() {
        assert_eq!(resolve(None, None, None), Ok(None));
        assert_eq!(resolve(Some(""), None, None), Ok(None));
        assert_eq!(resolve(Some("x"), None, None).unwrap().unwrap().expose(), "x");
        assert_eq!(resolve(Some("x"), None, Some("Y")), Err(SecretError::Ambiguous));
        let missing = Path::new("/nonexistent/df2redis/pw");
        assert!(matches!(resolve(None, Some(missing), None), Err(SecretError::File { .. })));
        assert_eq!(
            resolve(None, None, Some("DF2REDIS_TEST_SURELY_UNSET_VAR")),
            Err(SecretError::Env { name: "DF2REDIS_TEST_SURELY_UNSET_VAR".into() })
        );
    }
}
