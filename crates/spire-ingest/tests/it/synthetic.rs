use spire_core::config::SyntheticSettings;
use spire_ingest::sources::synthetic::Clickstream;

fn settings() -> SyntheticSettings {
    SyntheticSettings {
        users: 3000,
        days: 3,
        seed: 9,
        start_date: spire_core::time::parse_date("2026-10-01").unwrap(),
    }
}

#[test]
fn generator_is_deterministic_and_noisy_as_documented() {
    let g = Clickstream::new(settings());
    let a = g.day_records(1);
    assert_eq!(
        a,
        Clickstream::new(settings()).day_records(1),
        "same seed, same bytes"
    );
    let bad = a
        .iter()
        .filter(|r| serde_json::from_slice::<serde_json::Value>(r).is_err())
        .count();
    let share = bad as f64 / a.len() as f64;
    assert!(share > 0.001 && share < 0.01, "unparseable share {share}");
    let bots = a
        .iter()
        .filter(|r| r.windows(3).any(|w| w == b"bot"))
        .count();
    assert!(bots > 0);
}

#[test]
fn oracle_tracks_interests() {
    let g = Clickstream::new(settings());
    // Expected events summed over categories equal the user's total expected events.
    let t = g.traits(5);
    let total: f64 = (0..20).map(|c| g.expected_events(5, c, 0, 3)).sum();
    assert!(total > 0.0 && t.activity > 0.0);
    let top = (0..20)
        .max_by(|a, b| t.interests[*a].total_cmp(&t.interests[*b]))
        .unwrap();
    let low = (0..20)
        .min_by(|a, b| t.interests[*a].total_cmp(&t.interests[*b]))
        .unwrap();
    assert!(g.expected_events(5, top, 0, 3) > g.expected_events(5, low, 0, 3));
}
