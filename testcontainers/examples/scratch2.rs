use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, TopicPartitionList};
fn main() {
    let t = std::env::args().nth(1).unwrap();
    let c: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &t).set("group.id", "kmirror.fx").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("f", 0);
    tpl.add_partition("f", 1);
    println!("{:?}", c.committed_offsets(tpl, std::time::Duration::from_secs(5)));
}
