use kmirror_testcontainers::{KafkaCluster, RecordData};
fn main() {
    let (s, t) = KafkaCluster::start_pair().unwrap();
    s.create_topic("f", 2, &[]).unwrap();
    for p in 0..2 {
        s.produce("f", p, &(0..2000).map(|i| RecordData::keyed(format!("k{i}"), "v")).collect::<Vec<_>>())
            .unwrap();
    }
    println!("{} {}", s.bootstrap(), t.bootstrap());
    std::thread::sleep(std::time::Duration::from_secs(120));
}
