//! A side's client configuration for the one-shot commands (status, translate-offsets, verify),
//! and the check that the cluster answers.
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::cli::ClientFlags;
use crate::client_errors::{unreachable, ErrorRecorder};
use crate::config::{bootstrap, side_settings};
use crate::error::{Error, Result, Side};

/// The client config of `side` from `--source`/`--target`, its properties file and `--set`,
/// with the bootstrap servers it names.
pub fn client_config(
    side: Side,
    flag: Option<&String>,
    clients: &ClientFlags,
) -> Result<(ClientConfig, String)> {
    let file = match side {
        Side::Source => clients.source_config.as_ref(),
        Side::Target => clients.target_config.as_ref(),
    };
    let mut settings = side_settings(side, None, file, &Default::default(), &clients.set)?;
    let servers = bootstrap(side, flag, None, &mut settings)?;
    let mut config = settings.client_config();
    config.set("bootstrap.servers", &servers);
    Ok((config, servers))
}

/// Fails with a one-line error unless the cluster answers a metadata request: "unreachable",
/// or "refused the connection" with the TLS or login failure librdkafka reported.
pub fn reachable(config: &ClientConfig, side: Side, bootstrap: &str, timeout: Duration) -> Result<()> {
    let client: BaseConsumer<ErrorRecorder> = config
        .create_with_context(ErrorRecorder::default())
        .map_err(Error::kafka(side, "creating a client"))?;
    client.fetch_metadata(None, timeout).map(|_| ()).map_err(|e| unreachable(side, bootstrap, &client, e))
}
