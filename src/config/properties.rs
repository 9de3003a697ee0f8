//! Java `.properties` files, as MirrorMaker's `--consumer.config` and `--producer.config` take.
use std::path::Path;

use crate::error::{Error, Result};

/// Parses properties text: `#`/`!` comments, `=`, `:` or whitespace separators, backslash line
/// continuations and escapes. A line with a key but no separator and no value is refused, as
/// no kmirror or librdkafka setting takes an empty value by accident.
pub(crate) fn parse_properties(file: &Path, text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let first_line = index + 1;
        let mut logical = raw.trim_start().to_string();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let error =
            |message: String| Error::Properties { file: file.to_path_buf(), line: first_line, message };
        let (key, value) = split_key_value(&logical).ok_or_else(|| {
            // The line may be a credential missing its separator: never echo one.
            let shown = match super::secrets::is_secret(&logical) {
                true => "a credential line".to_string(),
                false => format!("'{}'", logical.trim()),
            };
            error(format!("{shown} has no '=' or ':' between key and value"))
        })?;
        let key = unescape(key).map_err(&error)?;
        if key.is_empty() {
            return Err(error("empty key before the separator".to_string()));
        }
        let value = unescape(value).map_err(&error)?;
        out.push((key, value));
    }
    Ok(out)
}

fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace; returns raw (still escaped) parts.
fn split_key_value(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' => return Some((&line[..i], line[i + 1..].trim_start())),
            b' ' | b'\t' | b'\x0c' => {
                let rest = line[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).map(str::trim_start).unwrap_or(rest);
                if rest.is_empty() {
                    return None;
                }
                return Some((&line[..i], rest));
            }
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("invalid unicode escape '\\u{hex}'"))?;
                out.push(code);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out.trim_end().to_string())
}

/// Reads and parses a properties file.
pub(crate) fn read_properties(file: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(file).map_err(|cause| super::file::unreadable(file, &cause))?;
    let entries = parse_properties(file, &text)?;
    super::secrets::warn_if_readable_by_others(
        file,
        entries.iter().any(|(k, _)| super::secrets::is_secret(k)),
    );
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<(String, String)>> {
        parse_properties(Path::new("test.properties"), text)
    }

    #[test]
    fn separators_comments_and_continuations() {
        let text = "# comment\n! also comment\n\nbootstrap.servers=a:9092\nclient.id : mirror\nlinger.ms 5\n\
                    sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\\n   required username=\"u\";\n";
        let props = parse(text).expect("parse");
        assert_eq!(
            props,
            vec![
                ("bootstrap.servers".into(), "a:9092".into()),
                ("client.id".into(), "mirror".into()),
                ("linger.ms".into(), "5".into()),
                (
                    "sasl.jaas.config".into(),
                    "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\";".into()
                ),
            ]
        );
    }

    #[test]
    fn escapes_in_keys_and_values() {
        let props = parse("a\\=b=c\\u0041\\td\n").expect("parse");
        assert_eq!(props, vec![("a=b".into(), "cA\td".into())]);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("a=1\n\njust-a-key\n").expect_err("must fail").to_string();
        assert!(err.contains("line 3") && err.contains("just-a-key"), "{err}");
        let err = parse("x=\\u12zz\n").expect_err("must fail").to_string();
        assert!(err.contains("line 1") && err.contains("unicode"), "{err}");
        let err = parse("=value\n").expect_err("must fail").to_string();
        assert!(err.contains("empty key"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_with_an_error(text in "(?s).{0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn any_line_of_properties_syntax_parses_or_fails(
            lines in proptest::collection::vec("[a-z.\\\\:= \t#!u0-9\\n]{0,40}", 0..12)
        ) {
            let _ = parse(&lines.join("\n"));
        }
    }
}
