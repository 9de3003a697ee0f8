//! Finding the Tansu broker binary that scripts/setup.sh installs.
use std::path::PathBuf;

use crate::apache_kafka::workspace_root;
use crate::error::{Error, Result};

/// Environment variable that names a Tansu binary to use instead of the project's cached one.
pub const TANSU_BIN_ENV: &str = "KMIRROR_TANSU_BIN";

pub fn tansu_binary() -> Result<PathBuf> {
    if let Ok(path) = std::env::var(TANSU_BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::BrokerBinaryMissing(format!("{} ({TANSU_BIN_ENV})", path.display())))
        };
    }
    let cached = workspace_root().join(".cache/bin/tansu");
    if cached.is_file() {
        return Ok(cached);
    }
    Err(Error::BrokerBinaryMissing(cached.display().to_string()))
}
