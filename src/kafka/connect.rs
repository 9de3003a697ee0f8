//! The check that a cluster answers, with the reason when it does not.
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::errors::{unreachable, ErrorRecorder};

/// Fails with a one-line error unless the cluster answers a metadata request: "unreachable",
/// or "refused the connection" with the TLS or login failure librdkafka reported.
pub(crate) fn reachable(config: &ClientConfig, side: Side, bootstrap: &str, timeout: Duration) -> Result<()> {
    let client: BaseConsumer<ErrorRecorder> = config
        .create_for_role_with_context(ErrorRecorder::default())
        .map_err(Error::kafka(side, "creating a client"))?;
    client.fetch_metadata(None, timeout).map(|_| ()).map_err(|e| unreachable(side, bootstrap, &client, e))
}
