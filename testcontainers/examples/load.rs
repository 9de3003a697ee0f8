//! Loads keyed records with two headers into a topic, for walk-throughs and manual runs:
//! `cargo run -p kmirror-testcontainers --example load -- BOOTSTRAP TOPIC PARTITIONS RECORDS_PER_PARTITION [VALUE_BYTES]`
use kmirror_testcontainers::{KafkaCluster, RecordData, Role};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (bootstrap, topic, partitions, records, padding) = match args.as_slice() {
        [b, t, p, r] => (b, t, p, r, 0usize),
        [b, t, p, r, v] => (b, t, p, r, v.parse()?),
        _ => return Err("usage: load BOOTSTRAP TOPIC PARTITIONS RECORDS_PER_PARTITION [VALUE_BYTES]".into()),
    };
    let (partitions, records): (i32, usize) = (partitions.parse()?, records.parse()?);
    // Padding makes records of a chosen size; the walk-through uses none.
    let pad = if padding == 0 { String::new() } else { format!(",\"pad\":\"{}\"", "x".repeat(padding)) };
    std::env::set_var(Role::Source.env_var(), bootstrap);
    let cluster = KafkaCluster::start(Role::Source)?;
    if cluster.partition_count(topic)?.is_none() {
        cluster.create_topic(topic, partitions, &[])?;
    }
    for p in 0..partitions {
        let batch: Vec<RecordData> = (0..records)
            .map(|i| RecordData {
                key: Some(format!("order-{p}-{i}").into_bytes()),
                value: Some(
                    format!("{{\"order\":{i},\"partition\":{p},\"amount\":{}{pad}}}", i * 7 % 1000)
                        .into_bytes(),
                ),
                headers: vec![
                    ("origin".into(), Some(b"walkthrough".to_vec())),
                    ("seq".into(), Some(i.to_string().into_bytes())),
                ],
                timestamp: None,
            })
            .collect();
        for chunk in batch.chunks(10_000) {
            cluster.produce(topic, p, chunk)?;
        }
    }
    println!("loaded {} records into {topic}", records * partitions as usize);
    Ok(())
}
