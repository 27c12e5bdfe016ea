//! The yardstick of `bench/intake`: a bare librdkafka consumer (rdkafka's `BaseConsumer`,
//! the same client settings Spire's Kafka source uses) that reads `COUNT` messages of a
//! topic and does nothing with them. Prints the steady-state rate, timed from the first
//! message (the group join excluded), as JSON.
//!
//! ```sh
//! cargo run --release -p spire-ingest --example kafka_bare -- BROKERS TOPIC COUNT
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, count] = args.as_slice() else {
        eprintln!("usage: kafka_bare BROKERS TOPIC COUNT");
        std::process::exit(2);
    };
    let count: u64 = count.parse().expect("COUNT is a number");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bare-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "roundrobin")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic.as_str()]).expect("subscribe");
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let (mut n, mut bytes) = (0u64, 0u64);
    while n < count {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                bytes += m.payload().map_or(0, <[u8]>::len) as u64;
                n += 1;
            }
            Some(Err(e)) => eprintln!("kafka: {e}"),
            None if started.elapsed() > Duration::from_secs(120) => {
                eprintln!("no messages for 120 s after {n}");
                std::process::exit(1);
            }
            None => {}
        }
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "{{\"messages\": {n}, \"bytes\": {bytes}, \"join_s\": {:.3}, \"steady_s\": {secs:.3}, \"per_s\": {:.0}}}",
        first.map_or(0.0, |f| (f - started).as_secs_f64()),
        n as f64 / secs.max(1e-9)
    );
}
