//! Throwaway topics on the Kafka-protocol test broker (tansu, started by
//! `scripts/kafka-broker.sh`), and a producer for them.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// The broker the tests use: `SPIRE_TEST_KAFKA_BROKERS`, default `127.0.0.1:9092`, where
/// `scripts/kafka-broker.sh` starts tansu.
pub fn kafka_brokers() -> String {
    std::env::var("SPIRE_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn unreachable(brokers: &str, what: &str, e: impl std::fmt::Display) -> ! {
    panic!(
        "\n\nthe Kafka test broker at {brokers} failed to {what}: {e}\n\
         The Kafka tests run against a real Kafka-protocol broker and are never skipped: start \
         tansu with `scripts/kafka-broker.sh` (scripts/test and .ci/run do), or point \
         SPIRE_TEST_KAFKA_BROKERS at another broker.\n"
    )
}

/// A fresh topic on the test broker.
#[derive(Debug, Clone)]
pub struct KafkaTopic {
    /// Bootstrap servers.
    pub brokers: String,
    /// The topic's name: `PREFIX-<uuid>`.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
}

impl KafkaTopic {
    /// Creates `prefix-<uuid>` with `partitions` partitions; panics with instructions when
    /// the broker does not answer.
    pub async fn create(prefix: &str, partitions: i32) -> KafkaTopic {
        let brokers = kafka_brokers();
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap_or_else(|e| unreachable(&brokers, "accept an admin client", e));
        let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
        let results = admin
            .create_topics([&topic], &opts)
            .await
            .unwrap_or_else(|e| unreachable(&brokers, "create a topic", e));
        for r in results {
            if let Err((t, e)) = r {
                unreachable(&brokers, &format!("create topic {t}"), e);
            }
        }
        KafkaTopic {
            brokers,
            name,
            partitions,
        }
    }

    /// A producer for this broker that writes one record per record batch.
    ///
    /// tansu 0.6's in-memory storage answers a fetch that starts inside a record batch
    /// with the *next* batch, silently skipping the rest of the one holding the requested
    /// offset (seen here: asking partition 2 for offset 20434 returned 21236 onwards, with
    /// the Python client too). A consumer resuming mid-batch, which exactly-once intake
    /// does after every restart, would lose records to the broker. One record per batch
    /// makes every offset a batch boundary.
    pub fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("linger.ms", "0")
            .set("batch.num.messages", "1")
            .set("message.timeout.ms", "300000")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .unwrap_or_else(|e| unreachable(&self.brokers, "accept a producer", e))
    }

    /// Produces each `(partition, payload)` and waits until the broker has all of them.
    pub async fn produce(&self, producer: &FutureProducer, records: &[(i32, Vec<u8>)]) {
        let mut pending = Vec::with_capacity(records.len());
        for (partition, payload) in records {
            let mut record: FutureRecord<'_, (), [u8]> = FutureRecord::to(&self.name)
                .partition(*partition)
                .payload(payload.as_slice());
            // Enqueue now (`send` would only enqueue when awaited); wait when the local
            // queue is full.
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(10));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((e, _)) => unreachable(&self.brokers, "accept a record", e),
                }
            }
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => unreachable(&self.brokers, "accept a record", e),
                Err(e) => unreachable(&self.brokers, "acknowledge a record", e),
            }
        }
        let _ = producer.flush(Duration::from_secs(30));
    }
}
