//! Throwaway streams on the Kinesis-compatible test server (kinesalite, started by
//! `scripts/kinesis-server.sh`), and a producer for them.

use std::time::Duration;

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use aws_sdk_kinesis::Client;

/// The server the tests use: `SPIRE_TEST_KINESIS_ENDPOINT`, default
/// `http://127.0.0.1:4567`, where `scripts/kinesis-server.sh` starts kinesalite.
pub fn kinesis_endpoint() -> String {
    std::env::var("SPIRE_TEST_KINESIS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4567".into())
}

fn unreachable(endpoint: &str, what: &str, e: impl std::fmt::Display) -> ! {
    panic!(
        "\n\nthe Kinesis test server at {endpoint} failed to {what}: {e}\n\
         The Kinesis tests run against a real Kinesis-compatible server and are never \
         skipped: start kinesalite with `scripts/kinesis-server.sh` (scripts/test and .ci/run \
         do), or point SPIRE_TEST_KINESIS_ENDPOINT at another server.\n"
    )
}

/// A fresh stream on the test server.
#[derive(Debug, Clone)]
pub struct KinesisStream {
    /// The server's URL.
    pub endpoint: String,
    /// The stream's name: `PREFIX-<uuid>`.
    pub name: String,
    /// A client with the test credentials (any key works on kinesalite).
    pub client: Client,
}

impl KinesisStream {
    /// A client for `endpoint` with fixed test credentials in region `us-east-1`.
    pub fn client_for(endpoint: &str) -> Client {
        let conf = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new(
                "spire-test",
                "spire-test",
                None,
                None,
                "spire-testkit",
            ))
            .build();
        Client::from_conf(conf)
    }

    /// Creates `prefix-<uuid>` with `shards` shards and waits until it is active; panics
    /// with instructions when the server does not answer.
    pub async fn create(prefix: &str, shards: i32) -> KinesisStream {
        let endpoint = kinesis_endpoint();
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        let client = KinesisStream::client_for(&endpoint);
        client
            .create_stream()
            .stream_name(&name)
            .shard_count(shards)
            .send()
            .await
            .unwrap_or_else(|e| unreachable(&endpoint, "create a stream", DisplayErrorContext(e)));
        let stream = KinesisStream {
            endpoint,
            name,
            client,
        };
        stream.wait_active().await;
        stream
    }

    /// Waits until the stream is active again (after creation or a reshard).
    pub async fn wait_active(&self) {
        for _ in 0..300 {
            let d = self
                .client
                .describe_stream_summary()
                .stream_name(&self.name)
                .send()
                .await
                .unwrap_or_else(|e| {
                    unreachable(&self.endpoint, "describe a stream", DisplayErrorContext(e))
                });
            if d.stream_description_summary()
                .is_some_and(|s| s.stream_status() == &StreamStatus::Active)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("stream {} did not become active within 15 s", self.name);
    }

    /// The stream's shards, as `ListShards` returns them.
    async fn shards(&self) -> Vec<aws_sdk_kinesis::types::Shard> {
        self.client
            .list_shards()
            .stream_name(&self.name)
            .send()
            .await
            .unwrap_or_else(|e| unreachable(&self.endpoint, "list shards", DisplayErrorContext(e)))
            .shards()
            .to_vec()
    }

    /// The ids of the stream's open shards (no ending sequence number).
    pub async fn open_shards(&self) -> Vec<String> {
        self.shards()
            .await
            .iter()
            .filter(|s| {
                s.sequence_number_range()
                    .is_none_or(|r| r.ending_sequence_number().is_none())
            })
            .map(|s| s.shard_id().to_string())
            .collect()
    }

    /// Splits `shard` in two at the middle of its hash-key range and waits until the
    /// stream is active; returns the child shards' ids.
    pub async fn split(&self, shard: &str) -> Vec<String> {
        let shards = self.shards().await;
        let s = shards
            .iter()
            .find(|s| s.shard_id() == shard)
            .unwrap_or_else(|| panic!("no shard {shard} in {}", self.name));
        let range = s.hash_key_range().expect("a shard has a hash-key range");
        let lo: u128 = range.starting_hash_key().parse().unwrap();
        let hi: u128 = range.ending_hash_key().parse().unwrap();
        let middle = lo + (hi - lo) / 2 + 1;
        self.client
            .split_shard()
            .stream_name(&self.name)
            .shard_to_split(shard)
            .new_starting_hash_key(middle.to_string())
            .send()
            .await
            .unwrap_or_else(|e| {
                unreachable(&self.endpoint, "split a shard", DisplayErrorContext(e))
            });
        self.wait_active().await;
        self.shards()
            .await
            .iter()
            .filter(|c| c.parent_shard_id() == Some(shard))
            .map(|c| c.shard_id().to_string())
            .collect()
    }

    /// Puts each `(partition_key, payload)` (in requests of up to 500, retrying what the
    /// server refused) and returns each record's `(shard id, sequence number)`, in order.
    pub async fn put(&self, records: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
        let mut out = vec![(String::new(), String::new()); records.len()];
        let mut pending: Vec<usize> = (0..records.len()).collect();
        for _attempt in 0..20 {
            if pending.is_empty() {
                return out;
            }
            let mut again = Vec::new();
            for chunk in pending.chunks(500) {
                let entries: Vec<PutRecordsRequestEntry> = chunk
                    .iter()
                    .map(|&i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(&records[i].0)
                            .data(Blob::new(records[i].1.clone()))
                            .build()
                            .expect("partition key and data are set")
                    })
                    .collect();
                let res = self
                    .client
                    .put_records()
                    .stream_name(&self.name)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        unreachable(&self.endpoint, "put records", DisplayErrorContext(e))
                    });
                for (&i, r) in chunk.iter().zip(res.records()) {
                    match (r.shard_id(), r.sequence_number()) {
                        (Some(shard), Some(seq)) => out[i] = (shard.to_string(), seq.to_string()),
                        _ => again.push(i),
                    }
                }
            }
            pending = again;
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        panic!(
            "{} records were refused 20 times by {}",
            pending.len(),
            self.endpoint
        );
    }
}
