use kmirror_testcontainers::{KafkaCluster, Role};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
fn main() {
    let c = KafkaCluster::start(Role::Source).unwrap();
    c.create_topic("t", 1, &[("retention.ms", "987654321")]).unwrap();
    let admin: AdminClient<DefaultClientContext> = c.client_config().create().unwrap();
    let r = futures_executor::block_on(admin.describe_configs([&ResourceSpecifier::Topic("t")], &AdminOptions::new())).unwrap();
    for x in r { for e in x.unwrap().entries { println!("{:?}", e); } }
}
