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
        KafkaTopic::create_on(&kafka_brokers(), prefix, partitions).await
    }

    /// Creates `prefix-<uuid>` on the broker at `brokers` (e.g. a [`KafkaBroker`]).
    pub async fn create_on(brokers: &str, prefix: &str, partitions: i32) -> KafkaTopic {
        let brokers = brokers.to_string();
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

/// A broker of the test's own (tansu, in memory), reached through a TCP gate the test
/// controls: [`KafkaBroker::disconnect`] cuts every connection and refuses new ones, so
/// clients see a broker that vanished while the broker itself (and its data and groups)
/// carries on; [`KafkaBroker::reconnect`] lets clients in again. Killed on drop.
#[derive(Debug)]
pub struct KafkaBroker {
    /// Its bootstrap address (the gate's), `127.0.0.1:PORT`.
    pub brokers: String,
    child: std::process::Child,
    gate: TcpGate,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl KafkaBroker {
    /// Starts tansu (`SPIRE_TEST_TANSU`, default `/var/cache/spire/tansu/bin/tansu`, which
    /// `scripts/kafka-broker.sh` installs) behind a gate, and waits until it answers.
    pub async fn spawn() -> KafkaBroker {
        let bin = std::env::var("SPIRE_TEST_TANSU")
            .unwrap_or_else(|_| "/var/cache/spire/tansu/bin/tansu".into());
        let (port, gate_port) = (free_port(), free_port());
        let child = std::process::Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                // Clients are sent to the gate for every connection, not only the first.
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{gate_port}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "\n\ncannot start the Kafka test broker {bin}: {e}\nInstall it with \
                     `scripts/kafka-broker.sh` (scripts/test and .ci/run do), or point \
                     SPIRE_TEST_TANSU at a tansu binary.\n"
                )
            });
        let gate = TcpGate::start(gate_port, format!("127.0.0.1:{port}")).await;
        // Owned from here on: dropping it kills the process, even on the panic below.
        let broker = KafkaBroker {
            brokers: format!("127.0.0.1:{gate_port}"),
            child,
            gate,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return broker;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the Kafka test broker {bin} did not listen on port {port} within 10 s");
    }

    /// Cuts every client connection and refuses new ones: to clients the broker is gone.
    pub fn disconnect(&self) {
        self.gate.close();
    }

    /// Lets clients connect again.
    pub fn reconnect(&self) {
        self.gate.open();
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        self.gate.close();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP forwarder that can be shut (every connection dropped, new ones closed at once).
#[derive(Debug)]
struct TcpGate {
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpGate {
    async fn start(port: u16, target: String) -> TcpGate {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{port}: {e}"));
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (o, c) = (open.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task);
            }
        });
        TcpGate {
            open,
            connections,
            accept,
        }
    }

    fn close(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn open(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
