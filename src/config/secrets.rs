//! Secrets in client settings: values taken from the environment or a file instead of the
//! config itself, and never shown (logs, errors, `--print-config`, Debug output).
use std::path::Path;

use tracing::warn;

use crate::error::{Error, Result, Side};

/// What is shown in place of a secret value.
pub(crate) const REDACTED: &str = "[redacted]";

/// True for settings whose values are credentials.
pub(crate) fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("jaas")
        || key.contains("token")
        || key == "ssl.key.pem"
        || key == "ssl_key"
}

/// Replaces every `${env:NAME}` with the environment variable NAME and every `${file:PATH}`
/// with the contents of PATH (without a trailing newline). Anything else is left as written.
pub(crate) fn resolve(side: Side, key: &str, value: &str) -> Result<String> {
    let refuse = |message: String| Error::ClientConfig { side, message: format!("{key}: {message}") };
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let reference = &after[..end];
        if let Some(name) = reference.strip_prefix("env:") {
            let found = std::env::var(name).map_err(|_| {
                refuse(format!("environment variable {name} is not set (export it or change the setting)"))
            })?;
            out.push_str(&found);
        } else if let Some(path) = reference.strip_prefix("file:") {
            let text = std::fs::read_to_string(path).map_err(|e| {
                refuse(format!("cannot read {path}: {e} (check the path and its permissions)"))
            })?;
            out.push_str(text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text));
        } else {
            out.push_str(&rest[start..start + 2 + end + 1]);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Warns when a file holding secrets can be read by every user of the machine.
pub(crate) fn warn_if_readable_by_others(path: &Path, holds_secrets: bool) {
    use std::os::unix::fs::PermissionsExt;
    if !holds_secrets {
        return;
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o004 != 0 {
            warn!(
                file = %path.display(),
                "this file holds credentials and every user can read it; restrict it: chmod 600 {}",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_file_references_are_resolved() {
        std::env::set_var("KMIRROR_TEST_SECRET_A", "from-env");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").expect("write");
        let value = format!("${{env:KMIRROR_TEST_SECRET_A}}/${{file:{}}}", file.display());
        assert_eq!(resolve(Side::Source, "sasl.password", &value).expect("resolved"), "from-env/from-file");
        assert_eq!(
            resolve(Side::Source, "k", "plain ${other:x} $x {y}").expect("kept"),
            "plain ${other:x} $x {y}"
        );
        assert_eq!(resolve(Side::Source, "k", "unterminated ${env:X").expect("kept"), "unterminated ${env:X");
    }

    #[test]
    fn a_missing_reference_is_named_without_its_value() {
        let err =
            resolve(Side::Target, "sasl.password", "${env:KMIRROR_TEST_NOT_SET_EVER}").expect_err("missing");
        let text = err.to_string();
        assert!(
            text.starts_with("target config: sasl.password: environment variable KMIRROR_TEST_NOT_SET_EVER"),
            "{text}"
        );
        let err = resolve(Side::Source, "ssl.key.password", "${file:/no/such/file}").expect_err("missing");
        assert!(err.to_string().contains("cannot read /no/such/file"), "{err}");
    }

    #[test]
    fn credential_keys_are_secret() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
        ] {
            assert!(is_secret(key), "{key}");
        }
        for key in ["sasl.username", "ssl.ca.location", "bootstrap.servers", "security.protocol"] {
            assert!(!is_secret(key), "{key}");
        }
    }
}
