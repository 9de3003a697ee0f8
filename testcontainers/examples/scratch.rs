use kmirror_testcontainers::{KafkaCluster, RecordData, Role};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;
fn main() {
    let c = KafkaCluster::start(Role::Source).unwrap();
    c.create_topic("t", 1, &[]).unwrap();
    c.produce_transaction(
        "t",
        0,
        &[RecordData::keyed("a", "b"), RecordData::keyed("a", "c"), RecordData::keyed("a", "d")],
        true,
    )
    .unwrap();
    let consumer: BaseConsumer = c
        .client_config()
        .set("group.id", "g")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("t", 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    for _ in 0..20 {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                use rdkafka::Message;
                println!("msg {}", m.offset());
            }
            Some(Err(e)) => println!("err {e}"),
            None => println!("none"),
        }
        println!("  wm {:?} pos {:?}", cached(&consumer), consumer.position().unwrap());
    }
    let log = kmirror_testcontainers::raw_log::read_raw_log(&c, "t", 0).unwrap();
    println!("hwm {} lso {}", log.high_watermark, log.last_stable_offset);
    // ListOffsets
    println!("fetch_watermarks {:?}", consumer.fetch_watermarks("t", 0, Duration::from_secs(5)));
}

fn cached(c: &BaseConsumer) -> (i64, i64) {
    let (mut lo, mut hi) = (0i64, 0i64);
    let topic = std::ffi::CString::new("t").unwrap();
    unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            c.client().native_ptr(),
            topic.as_ptr(),
            0,
            &mut lo,
            &mut hi,
        )
    };
    (lo, hi)
}
