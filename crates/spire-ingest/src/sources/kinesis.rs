//! The `kinesis` source: every shard of an Amazon Kinesis data stream, read with the
//! official AWS SDK for Rust (`aws-sdk-kinesis`).
//!
//! Each shard is one partition of the source, named by its shard id. Kinesis sequence
//! numbers (up to 128 decimal digits) do not fit the lake's `i64` offsets, so the source
//! numbers each shard's records itself: offset 0 is the first record Spire read of the
//! shard, and every record also carries its sequence number (`source_sequence`). On start
//! and after a refused commit a shard resumes right after the sequence number stored with
//! the record at its anchor offset ([`LakePosition::anchor`]); a shard without a position
//! in the lake starts at `TRIM_HORIZON` (`start_from = "earliest"`) or `LATEST`.
//!
//! Shards are discovered with `ListShards` at start and every [`SHARD_REFRESH`]; a child
//! shard of a split or merge is read only once its parents are read to their end, so
//! records of one partition key stay in order across a reshard. Expired iterators are
//! renewed after the last record read; throttling backs off.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use spire_core::config::{KinesisSettings, StartFrom};
use tokio::runtime::Handle;

use crate::error::{IngestError, Result};
use crate::record::{Position, RawRecord};
use crate::source::{Checkpoints, LakePosition, PartitionStatus, PositionLookup, Source};

/// Kinesis serves at most five `GetRecords` calls per second per shard.
const MIN_CALL_GAP: Duration = Duration::from_millis(200);
/// How long `next_batch` waits when no shard had a record before it says so.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How often the shard list is read again (new shards after a reshard).
const SHARD_REFRESH: Duration = Duration::from_secs(10);
/// The most records one `GetRecords` call may return.
const MAX_RECORDS_PER_CALL: usize = 10_000;
/// How long a shard may fail to answer before a bounded read gives up.
const FAILING_TIMEOUT: Duration = Duration::from_secs(60);
/// Back-off after a throttled or failed call.
const BACK_OFF: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A parent shard is still being read.
    Waiting,
    Reading,
    /// Closed and read to its end (or gone from the stream).
    Finished,
}

/// What the source knows of one shard.
#[derive(Debug, Clone)]
struct Shard {
    parents: Vec<String>,
    phase: Phase,
    /// The iterator for the next `GetRecords` call.
    iterator: Option<String>,
    /// Where a new iterator starts: after this sequence number (`None`: per `start_from`).
    after: Option<String>,
    /// The offset the next record gets.
    next_offset: i64,
    /// Whether both intake tables hold a position (until then, one record per batch).
    in_both: bool,
    committed: Option<i64>,
    behind_ms: Option<i64>,
    /// The last call returned nothing and was not behind the shard's tip.
    at_tip: bool,
    next_call: Instant,
    failing_since: Option<Instant>,
}

impl Shard {
    fn new(parents: Vec<String>, at: Option<&LakePosition>) -> Shard {
        let anchor = at.and_then(LakePosition::anchor);
        Shard {
            parents,
            phase: Phase::Waiting,
            iterator: None,
            after: at.and_then(|p| p.anchor_sequence.clone()),
            next_offset: anchor.map_or(0, |a| a + 1),
            in_both: at.is_some_and(LakePosition::in_both),
            committed: anchor,
            behind_ms: None,
            at_tip: false,
            next_call: Instant::now(),
            failing_since: None,
        }
    }

    fn reading(&self) -> bool {
        self.phase == Phase::Reading
    }
}

/// Reads every shard of a Kinesis data stream.
pub struct KinesisSource {
    name: String,
    settings: KinesisSettings,
    client: Option<Client>,
    lookup: Option<PositionLookup>,
    shards: BTreeMap<String, Shard>,
    listed_at: Option<Instant>,
    last_error: Option<String>,
    last_contact: Option<Instant>,
}

impl KinesisSource {
    /// A source that connects on first use, with credentials from the environment (the AWS
    /// SDK's default chain: `AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, web identity, instance
    /// roles).
    pub fn new(name: &str, settings: &KinesisSettings) -> KinesisSource {
        KinesisSource {
            name: name.to_string(),
            settings: settings.clone(),
            client: None,
            lookup: None,
            shards: BTreeMap::new(),
            listed_at: None,
            last_error: None,
            last_contact: None,
        }
    }

    /// A source that uses `client` (tests and embedders with their own credentials).
    pub fn with_client(name: &str, settings: &KinesisSettings, client: Client) -> KinesisSource {
        let mut source = KinesisSource::new(name, settings);
        source.client = Some(client);
        source
    }

    fn error(&self, message: String) -> IngestError {
        IngestError::Source {
            source_name: self.name.clone(),
            message,
        }
    }

    /// Runs `fut` to completion from the synchronous [`Source`] methods, which intake
    /// calls inside `block_in_place` on Tokio's multi-threaded runtime.
    fn block_on<F: std::future::Future>(&self, fut: F) -> Result<F::Output> {
        let handle = Handle::try_current().map_err(|_| {
            self.error("a kinesis source must be read inside a Tokio runtime".into())
        })?;
        Ok(handle.block_on(fut))
    }

    fn client(&mut self) -> Result<Client> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &self.settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let conf = self.block_on(loader.load())?;
        if conf.region().is_none() {
            return Err(self.error(
                "no AWS region: set `region` in the source or AWS_REGION in the environment".into(),
            ));
        }
        let client = Client::new(&conf);
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Where the stream is, for messages.
    fn at(&self) -> String {
        match &self.settings.endpoint {
            Some(e) => format!("stream `{}` at {e}", self.settings.stream),
            None => format!("stream `{}`", self.settings.stream),
        }
    }

    /// Every shard of the stream with its parents.
    fn list_shards(&mut self) -> Result<Vec<(String, Vec<String>)>> {
        let client = self.client()?;
        let stream = self.settings.stream.clone();
        let listed = self.block_on(async move {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut req = client.list_shards();
                req = match &token {
                    Some(t) => req.next_token(t),
                    None => req.stream_name(&stream),
                };
                let page = req.send().await?;
                for s in page.shards() {
                    let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                        .into_iter()
                        .flatten()
                        .map(str::to_string)
                        .collect();
                    out.push((s.shard_id().to_string(), parents));
                }
                match page.next_token() {
                    Some(t) => token = Some(t.to_string()),
                    None => return Ok(out),
                }
            }
        })?;
        listed.map_err(
            |e: aws_sdk_kinesis::error::SdkError<
                aws_sdk_kinesis::operation::list_shards::ListShardsError,
            >| {
                let hint = if e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                {
                    "the stream does not exist: create it, or fix `stream`"
                } else {
                    "check `endpoint`, `region` and the AWS credentials in the environment"
                };
                self.error(format!(
                    "cannot list the shards of {}: {} ({hint})",
                    self.at(),
                    DisplayErrorContext(&e)
                ))
            },
        )
    }

    /// Reads the shard list (at start and every [`SHARD_REFRESH`]), positions new shards
    /// from the lake and starts shards whose parents are done.
    fn refresh(&mut self, force: bool) -> Result<()> {
        if !force && self.listed_at.is_some_and(|t| t.elapsed() < SHARD_REFRESH) {
            return Ok(());
        }
        let listed = match self.list_shards() {
            Ok(l) => l,
            // Once running, a failed refresh waits for the next one.
            Err(e) if self.listed_at.is_some() => {
                tracing::warn!(source = %self.name, error = %e, "shard list not refreshed");
                self.last_error = Some(e.to_string());
                self.listed_at = Some(Instant::now());
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.listed_at = Some(Instant::now());
        self.last_contact = self.listed_at;
        let new: Vec<String> = listed
            .iter()
            .filter(|(id, _)| !self.shards.contains_key(id))
            .map(|(id, _)| id.clone())
            .collect();
        if !new.is_empty() {
            let positions = self.positions(&new)?;
            for (id, parents) in &listed {
                if new.contains(id) {
                    self.shards
                        .insert(id.clone(), Shard::new(parents.clone(), positions.get(id)));
                }
            }
            tracing::info!(source = %self.name, shards = %new.join(","), "kinesis shards found; resuming from the lake's positions");
        }
        // Shards gone from the list (past the retention period) have nothing to read.
        for (id, shard) in self.shards.iter_mut() {
            if !listed.iter().any(|(l, _)| l == id) && shard.phase != Phase::Finished {
                shard.phase = Phase::Finished;
            }
        }
        self.start_ready();
        Ok(())
    }

    /// Moves waiting shards whose parents are finished (or unknown) to reading.
    fn start_ready(&mut self) {
        let finished = |shards: &BTreeMap<String, Shard>, id: &str| {
            shards.get(id).is_none_or(|s| s.phase == Phase::Finished)
        };
        let ready: Vec<String> = self
            .shards
            .iter()
            .filter(|(_, s)| s.phase == Phase::Waiting)
            .filter(|(_, s)| s.parents.iter().all(|p| finished(&self.shards, p)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ready {
            if let Some(s) = self.shards.get_mut(&id) {
                s.phase = Phase::Reading;
            }
        }
    }

    /// The lake's positions of `shards`, checked: every anchored position needs its
    /// sequence number.
    fn positions(&self, shards: &[String]) -> Result<BTreeMap<String, LakePosition>> {
        let lookup = self.lookup.as_ref().ok_or_else(|| {
            self.error(
                "internal: a kinesis source was read before intake installed its position lookup"
                    .into(),
            )
        })?;
        let positions = lookup(shards)?;
        for (id, p) in &positions {
            if let (Some(anchor), None) = (p.anchor(), &p.anchor_sequence) {
                return Err(self.error(format!(
                    "shard {id}: the lake records offset {anchor}, but no row of `events_raw` \
                     or `dead_letters` holds that record's sequence number (were rows deleted \
                     or vacuumed away?); Spire cannot tell where the shard resumes, so it \
                     stops rather than guess"
                )));
            }
        }
        Ok(positions)
    }

    /// One `GetRecords` call on `id` for up to `limit` records (none when the shard is not
    /// due yet or the call failed; failures are retried after a back-off).
    fn fetch(&mut self, id: &str, limit: usize) -> Result<Vec<RawRecord>> {
        let Some(shard) = self.shards.get(id) else {
            return Ok(Vec::new());
        };
        if !shard.reading() || shard.next_call > Instant::now() {
            return Ok(Vec::new());
        }
        let (iterator, after) = (shard.iterator.clone(), shard.after.clone());
        let client = self.client()?;
        let stream = self.settings.stream.clone();
        let start_from = self.settings.start_from;
        let limit = limit.clamp(1, MAX_RECORDS_PER_CALL) as i32;
        let shard_id = id.to_string();
        let outcome = self.block_on(async move {
            let iterator = match iterator {
                Some(it) => it,
                None => {
                    let req = client
                        .get_shard_iterator()
                        .stream_name(&stream)
                        .shard_id(&shard_id);
                    let req = match &after {
                        Some(seq) => req
                            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                            .starting_sequence_number(seq),
                        None => req.shard_iterator_type(match start_from {
                            StartFrom::Earliest => ShardIteratorType::TrimHorizon,
                            StartFrom::Latest => ShardIteratorType::Latest,
                        }),
                    };
                    match req.send().await {
                        Ok(o) => match o.shard_iterator() {
                            Some(it) => it.to_string(),
                            None => return Fetch::Closed,
                        },
                        Err(e) => {
                            let gone = e
                                .as_service_error()
                                .is_some_and(|s| s.is_resource_not_found_exception());
                            return if gone {
                                Fetch::Gone
                            } else {
                                Fetch::Failed(format!(
                                    "cannot get an iterator: {}",
                                    DisplayErrorContext(&e)
                                ))
                            };
                        }
                    }
                }
            };
            match client
                .get_records()
                .shard_iterator(&iterator)
                .limit(limit)
                .send()
                .await
            {
                Ok(o) => Fetch::Records {
                    records: o
                        .records()
                        .iter()
                        .map(|r| (r.sequence_number().to_string(), r.data().as_ref().to_vec()))
                        .collect(),
                    next: o.next_shard_iterator().map(str::to_string),
                    behind_ms: o.millis_behind_latest(),
                },
                Err(e) => match e.as_service_error() {
                    Some(s) if s.is_expired_iterator_exception() => Fetch::Expired,
                    Some(s) if s.is_provisioned_throughput_exceeded_exception() => Fetch::Throttled,
                    Some(s) if s.is_resource_not_found_exception() => Fetch::Gone,
                    _ => Fetch::Failed(format!("cannot read records: {}", DisplayErrorContext(&e))),
                },
            }
        })?;
        let name = self.name.clone();
        let Some(shard) = self.shards.get_mut(id) else {
            return Ok(Vec::new());
        };
        let now = Instant::now();
        shard.next_call = now + MIN_CALL_GAP;
        let mut out = Vec::new();
        match outcome {
            Fetch::Records {
                records,
                next,
                behind_ms,
            } => {
                self.last_contact = Some(now);
                shard.failing_since = None;
                shard.behind_ms = behind_ms;
                shard.at_tip = records.is_empty() && behind_ms.is_none_or(|b| b == 0);
                for (sequence, payload) in records {
                    out.push(RawRecord {
                        payload,
                        position: Position {
                            source: name.clone(),
                            partition: id.to_string(),
                            offset: shard.next_offset,
                            sequence: Some(sequence.clone()),
                        },
                    });
                    shard.next_offset += 1;
                    shard.after = Some(sequence);
                }
                shard.iterator = next;
                if shard.iterator.is_none() {
                    // A closed shard read to its end: its children may start.
                    tracing::info!(source = %name, shard = id, "shard closed and read to its end");
                    shard.phase = Phase::Finished;
                }
            }
            Fetch::Closed | Fetch::Gone => {
                tracing::info!(source = %name, shard = id, "shard closed or gone; nothing more to read");
                shard.phase = Phase::Finished;
                shard.iterator = None;
            }
            Fetch::Expired => {
                // Renewed after the last record read, on the next call.
                tracing::debug!(source = %name, shard = id, "shard iterator expired; renewing it");
                shard.iterator = None;
                shard.next_call = now;
            }
            Fetch::Throttled => {
                tracing::debug!(source = %name, shard = id, "throttled by Kinesis; backing off");
                shard.next_call = now + BACK_OFF;
            }
            Fetch::Failed(message) => {
                tracing::warn!(source = %name, shard = id, error = %message, "kinesis read failed; retrying");
                shard.failing_since.get_or_insert(now);
                shard.next_call = now + BACK_OFF;
                self.last_error = Some(format!("{id}: {message}"));
            }
        }
        if self
            .shards
            .get(id)
            .is_some_and(|s| s.phase == Phase::Finished)
        {
            self.start_ready();
            self.listed_at = None; // read the list again: children may be new
        }
        Ok(out)
    }

    /// When the next shard may be called.
    fn next_due(&self) -> Option<Instant> {
        self.shards
            .values()
            .filter(|s| s.reading())
            .map(|s| s.next_call)
            .min()
    }

    fn reading_ids(&self, in_both: bool) -> Vec<String> {
        self.shards
            .iter()
            .filter(|(_, s)| s.reading() && s.in_both == in_both)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// The outcome of one `GetRecords` (and iterator) call.
enum Fetch {
    Records {
        records: Vec<(String, Vec<u8>)>,
        next: Option<String>,
        behind_ms: Option<i64>,
    },
    /// No iterator: the shard is closed at the requested position.
    Closed,
    /// The shard no longer exists.
    Gone,
    Expired,
    Throttled,
    Failed(String),
}

impl Source for KinesisSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn anchored(&self) -> bool {
        true
    }

    fn set_position_lookup(&mut self, lookup: PositionLookup) {
        self.lookup = Some(lookup);
    }

    fn partitions(&self) -> Vec<String> {
        self.shards.keys().cloned().collect()
    }

    fn seek(&mut self, checkpoints: &Checkpoints) -> Result<()> {
        let ids: Vec<String> = checkpoints
            .keys()
            .filter(|id| self.shards.contains_key(*id))
            .cloned()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        // The offsets alone cannot position a shard: read the anchors again.
        let positions = self.positions(&ids)?;
        for id in ids {
            if let Some(s) = self.shards.get_mut(&id) {
                let fresh = Shard::new(std::mem::take(&mut s.parents), positions.get(&id));
                let phase = s.phase;
                *s = fresh;
                s.phase = if phase == Phase::Finished {
                    Phase::Reading
                } else {
                    phase
                };
            }
        }
        Ok(())
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Vec<RawRecord>>> {
        self.refresh(false)?;
        // A shard not yet in both tables delivers one record alone (see `Source::anchored`).
        for id in self.reading_ids(false) {
            if let Some(r) = self.fetch(&id, 1)?.pop() {
                return Ok(Some(vec![r]));
            }
        }
        let linger = Duration::from_millis(self.settings.batch_max_wait_ms);
        let mut out: Vec<RawRecord> = Vec::new();
        let mut bytes = 0u64;
        let mut first_at: Option<Instant> = None;
        loop {
            for id in self.reading_ids(true) {
                let records = self.fetch(&id, max_records - out.len())?;
                if !records.is_empty() {
                    first_at.get_or_insert_with(Instant::now);
                }
                bytes += records.iter().map(|r| r.payload.len() as u64).sum::<u64>();
                out.extend(records);
                if out.len() >= max_records || bytes >= self.settings.batch_max_bytes {
                    return Ok(Some(out));
                }
            }
            let due = self
                .next_due()
                .unwrap_or_else(|| Instant::now() + IDLE_POLL);
            match first_at {
                None => {
                    // Nothing anywhere: wait for the next shard to be due, then say so.
                    let wait = due.saturating_duration_since(Instant::now()).min(IDLE_POLL);
                    std::thread::sleep(wait.max(Duration::from_millis(10)));
                    return Ok(None);
                }
                Some(t) => {
                    let left = linger.saturating_sub(t.elapsed());
                    if left.is_zero() {
                        return Ok(Some(out));
                    }
                    let wait = due.saturating_duration_since(Instant::now()).min(left);
                    std::thread::sleep(wait.max(Duration::from_millis(1)));
                }
            }
        }
    }

    fn caught_up(&mut self) -> Result<bool> {
        self.refresh(false)?;
        if let Some((id, since)) = self
            .shards
            .iter()
            .filter_map(|(id, s)| Some((id, s.failing_since?)))
            .min_by_key(|(_, since)| *since)
        {
            if since.elapsed() > FAILING_TIMEOUT {
                return Err(self.error(format!(
                    "shard {id} of {} has not answered for {} s; last error: {}",
                    self.at(),
                    since.elapsed().as_secs(),
                    self.last_error.clone().unwrap_or_default()
                )));
            }
        }
        Ok(self
            .shards
            .values()
            .all(|s| s.phase == Phase::Finished || (s.reading() && s.at_tip)))
    }

    fn committed(&mut self, positions: &Checkpoints) {
        for (id, offset) in positions {
            if let Some(s) = self.shards.get_mut(id) {
                s.committed = Some(*offset);
                s.in_both = true;
            }
        }
    }

    fn last_contact(&self) -> Option<Instant> {
        self.last_contact
    }

    fn probe(&mut self) -> bool {
        match self.list_shards() {
            Ok(_) => {
                self.last_contact = Some(Instant::now());
                true
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                false
            }
        }
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.clone()
    }

    fn status(&self) -> Vec<PartitionStatus> {
        self.shards
            .iter()
            .map(|(id, s)| PartitionStatus {
                partition: id.clone(),
                committed: s.committed,
                high_watermark: None,
                lag: None,
                behind_ms: s.behind_ms,
            })
            .collect()
    }
}
