//! Adds, drops or renames headers.
use super::OwnedRecord;

#[derive(Debug, Clone)]
pub(crate) enum HeaderEdit {
    Add { name: String, value: Vec<u8> },
    Drop(String),
    Rename { from: String, to: String },
}

impl HeaderEdit {
    /// `add:NAME=VALUE`, `drop:NAME` or `rename:OLD=>NEW`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (op, rest) = text.split_once(':').ok_or("headers:add:, headers:drop: or headers:rename:")?;
        let named =
            |n: &str| if n.is_empty() { Err("an empty header name".to_string()) } else { Ok(n.to_string()) };
        match op {
            "add" => {
                let (name, value) = rest.split_once('=').ok_or("headers:add needs NAME=VALUE")?;
                Ok(Self::Add { name: named(name)?, value: value.as_bytes().to_vec() })
            }
            "drop" => Ok(Self::Drop(named(rest)?)),
            "rename" => {
                let (from, to) = rest.split_once("=>").ok_or("headers:rename needs OLD=>NEW")?;
                Ok(Self::Rename { from: named(from)?, to: named(to)? })
            }
            _ => Err(format!("unknown header edit '{op}' (add, drop, rename)")),
        }
    }

    pub(crate) fn apply(&self, mut record: OwnedRecord) -> OwnedRecord {
        match self {
            Self::Add { name, value } => record.headers.push((name.clone(), Some(value.clone()))),
            Self::Drop(name) => record.headers.retain(|(k, _)| k != name),
            Self::Rename { from, to } => {
                for (k, _) in record.headers.iter_mut().filter(|(k, _)| k == from) {
                    k.clone_from(to);
                }
            }
        }
        record
    }
}
