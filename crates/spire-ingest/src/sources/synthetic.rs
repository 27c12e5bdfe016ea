//! The `synthetic` source: a reproducible clickstream with real, known signal.
//!
//! Each human user has latent traits drawn from the seed: an activity level (sessions per
//! day), interests over categories (sparse, Dirichlet-distributed), a possible interest shift
//! at some day (so the past predicts the future imperfectly), a brand preference, a device,
//! a country and a daily rhythm (a peak hour, weekday/weekend habits). Sessions hold a few
//! events that tend to stay on one category. About 5% of traffic comes from bots (crawler
//! user agents, or human-looking agents firing inhuman bursts), about 1% of records are
//! malformed or incomplete, about 0.5% are re-delivered duplicates, and a few events arrive
//! hours or days late (`received_at`).
//!
//! Because traits are known, [`Clickstream::expected_events`] gives the oracle: the expected
//! number of a user's events in a category over a horizon — the score a perfect model would
//! rank by.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, LogNormal, Poisson};
use serde_json::json;
use spire_core::config::SyntheticSettings;

use crate::error::Result;
use crate::record::{Position, RawRecord};
use crate::source::{Checkpoints, Source};

/// Content categories.
pub const CATEGORIES: [&str; 20] = [
    "news",
    "politics",
    "business",
    "finance",
    "tech",
    "gadgets",
    "science",
    "health",
    "fitness",
    "food",
    "travel",
    "luxury",
    "autos",
    "sports",
    "football",
    "entertainment",
    "music",
    "gaming",
    "fashion",
    "home",
];

/// Publisher brands, each with the categories it mostly covers.
pub const BRANDS: [(&str, &[usize]); 6] = [
    ("daily-herald", &[0, 1, 2, 3, 6, 7, 13, 15]),
    ("tech-pulse", &[4, 5, 6, 17, 12]),
    ("wanderlust", &[10, 11, 9, 18]),
    ("sportszone", &[13, 14, 8]),
    ("money-wise", &[2, 3, 11, 12, 19]),
    ("style-edit", &[18, 11, 19, 7, 16, 15]),
];

const NC: usize = CATEGORIES.len();
const NB: usize = BRANDS.len();
/// Mean events per session (1 + Poisson(1.6)).
const EVENTS_PER_SESSION: f64 = 2.6;
const DEVICES: [(&str, f64); 3] = [("mobile", 0.60), ("desktop", 0.32), ("tablet", 0.08)];
const COUNTRIES: [(&str, f64); 8] = [
    ("US", 0.40),
    ("GB", 0.15),
    ("DE", 0.10),
    ("IN", 0.10),
    ("FR", 0.08),
    ("BR", 0.07),
    ("CA", 0.05),
    ("AU", 0.05),
];
const HUMAN_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/604.1",
];
const BOT_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "python-requests/2.31.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
    "curl/8.5.0",
];
const EVENT_TYPES: [(&str, f64); 5] = [
    ("pageview", 0.85),
    ("click", 0.08),
    ("video_play", 0.05),
    ("share", 0.015),
    ("subscribe", 0.005),
];
const REFERRERS: [&str; 5] = [
    "https://www.google.com/",
    "https://news.ycombinator.com/",
    "https://t.co/",
    "",
    "https://www.facebook.com/",
];

/// A human user's latent traits.
#[derive(Debug, Clone)]
pub struct UserTraits {
    /// Mean sessions per day.
    pub activity: f64,
    /// Interests before the shift.
    pub interests: [f64; NC],
    /// Interests after the shift.
    pub interests_after: [f64; NC],
    /// Day (fractional, from the start) of the interest shift, if any.
    pub shift_day: Option<f64>,
    /// Weekend activity multiplier.
    pub weekend_factor: f64,
    /// Peak hour of the day (UTC).
    pub peak_hour: f64,
    /// Device index into the device list.
    pub device: usize,
    /// Country index.
    pub country: usize,
    /// Brand preference weights.
    pub brand_pref: [f64; NB],
}

impl UserTraits {
    /// Interest in category `c` on day `day` (days from the start).
    pub fn interest(&self, c: usize, day: f64) -> f64 {
        let w = match self.shift_day {
            Some(s) => 1.0 / (1.0 + (-(day - s) / 2.0).exp()),
            None => 0.0,
        };
        (1.0 - w) * self.interests[c] + w * self.interests_after[c]
    }
}

/// The generative model behind the synthetic source.
#[derive(Debug, Clone)]
pub struct Clickstream {
    settings: SyntheticSettings,
    n_bots: u64,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn rng_for(seed: u64, a: u64, b: u64) -> StdRng {
    StdRng::seed_from_u64(mix(
        mix(mix(seed) ^ a) ^ b.wrapping_mul(0x2545_F491_4F6C_DD1D)
    ))
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[(T, f64)]) -> T {
    let mut x: f64 = rng.random();
    for (item, p) in items {
        if x < *p {
            return *item;
        }
        x -= p;
    }
    items[items.len() - 1].0
}

fn pick_weighted(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn dirichlet<const N: usize>(rng: &mut StdRng, alpha: f64) -> [f64; N] {
    let mut out = [0.0; N];
    let gamma = Gamma::new(alpha, 1.0).ok();
    for v in out.iter_mut() {
        *v = gamma.map_or(1.0, |g| g.sample(rng)).max(1e-12);
    }
    let s: f64 = out.iter().sum();
    out.iter_mut().for_each(|v| *v /= s);
    out
}

impl Clickstream {
    /// The model for `settings`.
    pub fn new(settings: SyntheticSettings) -> Clickstream {
        let n_bots = (settings.users / 500).max(1);
        Clickstream { settings, n_bots }
    }

    /// The settings.
    pub fn settings(&self) -> &SyntheticSettings {
        &self.settings
    }

    /// The id of human user `u`.
    pub fn user_id(u: u64) -> String {
        format!("u{u:07}")
    }

    /// The latent traits of human user `u`.
    pub fn traits(&self, u: u64) -> UserTraits {
        let mut rng = rng_for(self.settings.seed, u, 0);
        let activity = LogNormal::new((0.5f64).ln(), 0.9)
            .map_or(0.5, |d| d.sample(&mut rng))
            .min(8.0);
        let interests = dirichlet::<NC>(&mut rng, 0.25);
        let interests_after = dirichlet::<NC>(&mut rng, 0.25);
        let days = f64::from(self.settings.days);
        let shift_day = (rng.random::<f64>() < 0.3).then(|| rng.random::<f64>() * (days + 14.0));
        let weekend_factor = if rng.random::<bool>() { 0.7 } else { 1.3 };
        let peak_hour = [8.0, 12.5, 20.5][rng.random_range(0..3)] + rng.random::<f64>() * 2.0 - 1.0;
        let device = pick(
            &mut rng,
            &[(0usize, DEVICES[0].1), (1, DEVICES[1].1), (2, DEVICES[2].1)],
        );
        let country_weights: Vec<(usize, f64)> = COUNTRIES
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.1))
            .collect();
        let country = pick(&mut rng, &country_weights);
        let brand_pref = dirichlet::<NB>(&mut rng, 1.0);
        UserTraits {
            activity,
            interests,
            interests_after,
            shift_day,
            weekend_factor,
            peak_hour,
            device,
            country,
            brand_pref,
        }
    }

    fn day_factor(&self, t: &UserTraits, day: u32) -> f64 {
        let date = self.settings.start_date + chrono::Duration::days(i64::from(day));
        use chrono::Datelike;
        if date.weekday().number_from_monday() >= 6 {
            t.weekend_factor
        } else {
            1.0
        }
    }

    /// The oracle: expected events of human user `u` in category `c` over days
    /// `[from_day, from_day + days)` (days counted from the start date).
    pub fn expected_events(&self, u: u64, c: usize, from_day: u32, days: u32) -> f64 {
        let t = self.traits(u);
        (from_day..from_day + days)
            .map(|d| {
                t.activity
                    * self.day_factor(&t, d)
                    * EVENTS_PER_SESSION
                    * t.interest(c, f64::from(d) + 0.5)
            })
            .sum()
    }

    /// All records of day `day`, in offset order.
    pub fn day_records(&self, day: u32) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let day_start =
            crate::time_micros(self.settings.start_date) + i64::from(day) * 86_400_000_000;
        for u in 0..self.settings.users {
            self.human_day(u, day, day_start, &mut out);
        }
        for b in 0..self.n_bots {
            self.bot_day(b, day, day_start, &mut out);
        }
        out
    }

    fn human_day(&self, u: u64, day: u32, day_start: i64, out: &mut Vec<Vec<u8>>) {
        let t = self.traits(u);
        let mut rng = rng_for(self.settings.seed, u, u64::from(day) + 1);
        let mean = t.activity * self.day_factor(&t, day);
        let sessions = Poisson::new(mean.max(1e-9)).map_or(0.0, |p| p.sample(&mut rng)) as u32;
        let uid = Clickstream::user_id(u);
        let mut k = 0u64;
        for _ in 0..sessions {
            let hour = (t.peak_hour
                + (rng.random::<f64>() + rng.random::<f64>() + rng.random::<f64>() - 1.5) * 4.0)
                .rem_euclid(24.0);
            let mut ts = day_start + (hour * 3_600_000_000.0) as i64;
            let n = 1 + Poisson::new(1.6).map_or(0.0, |p| p.sample(&mut rng)) as u32;
            let weights: Vec<f64> = (0..NC)
                .map(|c| t.interest(c, f64::from(day) + 0.5))
                .collect();
            let mut cat = pick_weighted(&mut rng, &weights);
            for i in 0..n {
                if i > 0 {
                    if rng.random::<f64>() > 0.7 {
                        cat = pick_weighted(&mut rng, &weights);
                    }
                    ts += (rng.random::<f64>().max(1e-9).ln().abs() * 60_000_000.0) as i64
                        + 2_000_000;
                }
                if ts >= day_start + 86_400_000_000 {
                    break; // sessions end at midnight, so the last day never spills over
                }
                let brand = self.brand_for(&mut rng, &t, cat);
                let agent = HUMAN_AGENTS[t.device];
                let record = event_json(
                    &mut rng,
                    &uid,
                    u,
                    day,
                    k,
                    ts,
                    cat,
                    brand,
                    DEVICES[t.device].0,
                    COUNTRIES[t.country].0,
                    agent,
                    self.settings.seed,
                );
                k += 1;
                push_with_noise(&mut rng, record, out);
            }
        }
    }

    fn bot_day(&self, b: u64, day: u32, day_start: i64, out: &mut Vec<Vec<u8>>) {
        let mut rng = rng_for(self.settings.seed ^ 0xB07, b, u64::from(day) + 1);
        let id = self.settings.users + b;
        let uid = Clickstream::user_id(id);
        let crawler = b.is_multiple_of(2);
        let (n, burst_start) = if crawler {
            (
                Poisson::new(25.0).map_or(25.0, |p| p.sample(&mut rng)) as u64,
                None,
            )
        } else {
            (80, Some(day_start + rng.random_range(0..86_000_000_000i64)))
        };
        for k in 0..n {
            let ts = match burst_start {
                Some(s) => s + rng.random_range(0..25_000_000i64),
                None => day_start + rng.random_range(0..86_400_000_000i64),
            };
            let cat = rng.random_range(0..NC);
            let brand = rng.random_range(0..NB);
            let agent = if crawler {
                BOT_AGENTS[(b as usize / 2) % BOT_AGENTS.len()]
            } else {
                HUMAN_AGENTS[1]
            };
            let record = event_json(
                &mut rng,
                &uid,
                id,
                day,
                k,
                ts,
                cat,
                brand,
                "desktop",
                "US",
                agent,
                self.settings.seed,
            );
            push_with_noise(&mut rng, record, out);
        }
    }

    fn brand_for(&self, rng: &mut StdRng, t: &UserTraits, cat: usize) -> usize {
        let weights: Vec<f64> = BRANDS
            .iter()
            .enumerate()
            .map(|(i, (_, cats))| {
                if cats.contains(&cat) {
                    t.brand_pref[i] + 0.05
                } else {
                    0.0
                }
            })
            .collect();
        if weights.iter().sum::<f64>() > 0.0 {
            pick_weighted(rng, &weights)
        } else {
            rng.random_range(0..NB)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn event_json(
    rng: &mut StdRng,
    uid: &str,
    u: u64,
    day: u32,
    k: u64,
    ts: i64,
    cat: usize,
    brand: usize,
    device: &str,
    country: &str,
    agent: &str,
    seed: u64,
) -> serde_json::Value {
    let event_id = format!(
        "{:016x}",
        mix(mix(seed ^ u.wrapping_mul(0x1000_0000_01B3)) ^ (u64::from(day) << 32 | k))
    );
    let item = (300.0 * rng.random::<f64>().powi(2)) as u32;
    let content = format!("{}-{item:04}", CATEGORIES[cat]);
    let event_type = pick(rng, &EVENT_TYPES);
    let dwell = LogNormal::new(10.0, 0.8).map_or(20_000.0, |d| d.sample(rng)) as i64;
    let delay: i64 = {
        let x: f64 = rng.random();
        if x < 0.975 {
            rng.random_range(100_000..5_000_000)
        } else if x < 0.995 {
            rng.random_range(3_600_000_000..18_000_000_000)
        } else {
            rng.random_range(86_400_000_000..259_200_000_000)
        }
    };
    let ts_value = if rng.random::<f64>() < 0.7 {
        json!(crate::rfc3339_micros(ts))
    } else {
        json!(ts / 1000)
    };
    json!({
        "event_id": event_id,
        "user_id": uid,
        "ts": ts_value,
        "event_type": event_type,
        "brand": BRANDS[brand].0,
        "category": CATEGORIES[cat],
        "content_id": content,
        "url": format!("https://{}.example/{}/{content}", BRANDS[brand].0, CATEGORIES[cat]),
        "referrer": REFERRERS[rng.random_range(0..REFERRERS.len())],
        "user_agent": agent,
        "device": device,
        "country": country,
        "dwell_ms": dwell,
        "received_at": crate::rfc3339_micros(ts + delay),
    })
}

/// Appends the record, sometimes corrupted (~1%) or delivered twice (~0.5%).
fn push_with_noise(rng: &mut StdRng, mut record: serde_json::Value, out: &mut Vec<Vec<u8>>) {
    let x: f64 = rng.random();
    if x < 0.01 {
        let bytes = match rng.random_range(0..8) {
            0 => {
                let s = record.to_string();
                s.as_bytes()[..s.len() / 2].to_vec()
            }
            1 => {
                record.as_object_mut().map(|o| o.remove("user_id"));
                record.to_string().into_bytes()
            }
            2 => {
                record.as_object_mut().map(|o| o.remove("ts"));
                record.to_string().into_bytes()
            }
            3 => {
                record["ts"] = json!("last tuesday");
                record.to_string().into_bytes()
            }
            4 => {
                record["user_id"] = json!({"id": record["user_id"].clone()});
                record.to_string().into_bytes()
            }
            5 => {
                // 2100-01-01: always beyond any skew allowance, and independent of today.
                record["ts"] = json!(crate::rfc3339_micros(4_102_444_800_000_000));
                record.to_string().into_bytes()
            }
            6 => {
                let mut b = record.to_string().into_bytes();
                b.insert(b.len() / 2, 0xff);
                b
            }
            _ => {
                record["dwell_ms"] = json!("about a minute");
                record.to_string().into_bytes()
            }
        };
        out.push(bytes);
        return;
    }
    let bytes = record.to_string().into_bytes();
    if x > 0.995 {
        out.push(bytes.clone());
    }
    out.push(bytes);
}

/// The synthetic source: one partition per day (`YYYY-MM-DD`), offsets 1-based per day.
pub struct SyntheticSource {
    name: String,
    model: Clickstream,
    next_day: u32,
    buffer: std::vec::IntoIter<Vec<u8>>,
    partition: String,
    offset: i64,
    checkpoints: Checkpoints,
}

impl SyntheticSource {
    /// A source generating the clickstream described by `settings`.
    pub fn new(name: &str, settings: SyntheticSettings) -> SyntheticSource {
        SyntheticSource {
            name: name.to_string(),
            model: Clickstream::new(settings),
            next_day: 0,
            buffer: Vec::new().into_iter(),
            partition: String::new(),
            offset: 0,
            checkpoints: Checkpoints::new(),
        }
    }

    fn day_name(&self, day: u32) -> String {
        (self.model.settings.start_date + chrono::Duration::days(i64::from(day)))
            .format("%Y-%m-%d")
            .to_string()
    }
}

impl Source for SyntheticSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn seek(&mut self, checkpoints: &Checkpoints) -> Result<()> {
        self.checkpoints = checkpoints.clone();
        Ok(())
    }

    fn partitions(&self) -> Vec<String> {
        (0..self.model.settings.days)
            .map(|d| self.day_name(d))
            .collect()
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Vec<RawRecord>>> {
        let mut out = Vec::new();
        while out.len() < max_records {
            match self.buffer.next() {
                Some(payload) => {
                    self.offset += 1;
                    if self.offset <= self.checkpoints.get(&self.partition).copied().unwrap_or(0) {
                        continue;
                    }
                    out.push(RawRecord {
                        payload,
                        position: Position {
                            source: self.name.clone(),
                            partition: self.partition.clone(),
                            offset: self.offset,
                            sequence: None,
                        },
                    });
                }
                None => {
                    if self.next_day >= self.model.settings.days {
                        break;
                    }
                    let day = self.next_day;
                    self.next_day += 1;
                    self.partition = self.day_name(day);
                    self.offset = 0;
                    let records = self.model.day_records(day);
                    // A fully ingested day is skipped as a whole.
                    if self.checkpoints.get(&self.partition).copied().unwrap_or(0)
                        >= records.len() as i64
                    {
                        continue;
                    }
                    self.buffer = records.into_iter();
                }
            }
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }
}
