//! Which layer gave a refused value: one read from the settings file but named under its flag
//! ("invalid --topics regex") sent the user to a command line that does not hold it.
use std::path::Path;

use super::file::MirrorFile;
use crate::error::Error;

/// The settings file a value came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FileKind {
    /// kmirror's TOML file, whose keys are the flags' names with '_' for '-'.
    Toml,
    /// A MirrorMaker 2 file, whose keys are its own.
    Mm2,
}

/// `e` as said of `path` where the flag it names first took its value from the file (`file`)
/// and not from the command line (`flags`); as it is otherwise, and where the file's own
/// errors name it already.
pub(crate) fn blame_file(
    e: Error,
    flags: &MirrorFile,
    file: &MirrorFile,
    path: &Path,
    kind: FileKind,
) -> Error {
    if matches!(e, Error::ConfigFile { .. } | Error::Properties { .. }) {
        return e;
    }
    let said = e.to_string();
    let Some(flag) = first_flag(&said) else { return e };
    let key = key_of(flag);
    if !gives(file, &key) || gives(flags, &key) {
        return e;
    }
    let whose = match kind {
        FileKind::Toml => format!("its {key} (the value of {flag})"),
        FileKind::Mm2 => format!("the value of {flag} it gives"),
    };
    Error::ConfigFile { file: path.to_path_buf(), message: format!("{whose}: {said}") }
}

/// The file's key for `flag`: its name with '_' for '-', but where the file names it otherwise
/// (the repeatable `--transform` is one list, `transforms`).
fn key_of(flag: &str) -> String {
    match flag {
        "--transform" => "transforms".into(),
        _ => flag.trim_start_matches("--").replace('-', "_"),
    }
}

/// The first `--flag` a message names.
fn first_flag(said: &str) -> Option<&str> {
    let at = said.match_indices("--").map(|(i, _)| i).find(|&i| {
        let before = said[..i].chars().next_back();
        before.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-')
    })?;
    let name_len =
        said[at + 2..].find(|c: char| !(c.is_ascii_lowercase() || c == '-')).unwrap_or(said.len() - at - 2);
    (name_len > 0).then(|| &said[at..at + 2 + name_len])
}

/// Whether the layer sets `key` (a value, not a default: no value and an empty list set none).
fn gives(layer: &MirrorFile, key: &str) -> bool {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(layer) else { return false };
    match fields.get(key) {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::first_flag;

    #[test]
    fn the_first_flag_is_the_first_whole_one() {
        assert_eq!(first_flag("invalid --topics regex '(': x"), Some("--topics"));
        assert_eq!(first_flag("--num-streams must be at least 1"), Some("--num-streams"));
        assert_eq!(first_flag("a-b--c then --groups REGEX"), Some("--groups"));
        assert_eq!(first_flag("nothing named -- here"), None);
        assert_eq!(first_flag("target.transaction.timeout.ms 2000000"), None);
    }
}
