//! End-to-end tests of the lifecycle on the synthetic clickstream, with real Delta tables,
//! a real SQLite registry, and a foreign Delta reader.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::Command;

use spire_core::config::LoadOptions;
use spire_lake::Lake;
use spire_pipeline::demo::{self, DemoOptions};
use spire_pipeline::index::SegmentIndex;
use spire_pipeline::{Quiet, Workspace};
use spire_registry::{ModelRegistry, TrackingStore};

async fn count(lake: &Lake, sql: &str) -> i64 {
    let ctx = lake.session();
    lake.register_all(&ctx).await.unwrap();
    let b = Lake::query(&ctx, sql).await.unwrap();
    spire_lake::columns::ints(&b[0], b[0].schema().field(0).name())
        .unwrap()
        .value(0)
}

/// Reads a table with `scripts/read_delta.py` (pyarrow only). Python with pyarrow is a test
/// requirement (`.ci/run` installs it; set SPIRE_PYTHON to its interpreter).
fn foreign_read(table: &Path, extra: &[&str]) -> serde_json::Value {
    let python = std::env::var("SPIRE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/read_delta.py");
    let out = Command::new(&python).arg(script).arg(table).args(extra).output().unwrap_or_else(|e| {
        panic!("cannot run {python}: {e}. Install Python 3 with pyarrow (see .ci/run) and set SPIRE_PYTHON")
    });
    assert!(
        out.status.success(),
        "foreign Delta reader failed (needs pyarrow; see .ci/run, SPIRE_PYTHON={python}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// For a segment written with `output.write_scores`: how many scores were written, and the
/// largest gap between a written score and `model`'s own prediction on the latest
/// `behaviour` snapshot.
async fn written_vs_own(
    ws: &Workspace,
    segment: &str,
    model: &dyn spire_ml::Predictor,
) -> (usize, f64) {
    let (fctx, fv) = spire_features::dataset::features_session(&ws.lake, "behaviour")
        .await
        .unwrap();
    let as_of = spire_features::dataset::latest_as_of(&fctx)
        .await
        .unwrap()
        .unwrap();
    let snap = spire_features::dataset::load(&fctx, "behaviour", fv, as_of)
        .await
        .unwrap();
    let idx: Vec<usize> = model
        .feature_names()
        .iter()
        .map(|n| snap.columns.iter().position(|c| c == n).unwrap())
        .collect();
    let ncol = snap.columns.len();
    let data: Vec<f64> = (0..snap.user_ids.len())
        .flat_map(|r| idx.iter().map(move |i| (r, *i)))
        .map(|(r, i)| snap.values[r * ncol + i])
        .collect();
    let x = spire_ml::Matrix::new(snap.user_ids.len(), idx.len(), data).unwrap();
    let own: std::collections::HashMap<&str, f64> = snap
        .user_ids
        .iter()
        .map(String::as_str)
        .zip(model.predict_proba(&x).unwrap())
        .collect();
    let ctx = ws.lake.session();
    ws.lake.register_all(&ctx).await.unwrap();
    let written = Lake::query(
        &ctx,
        &format!("SELECT user_id, score FROM scores WHERE segment = '{segment}'"),
    )
    .await
    .unwrap();
    let (mut n, mut gap) = (0, 0f64);
    for b in &written {
        let users = spire_lake::columns::strings(b, "user_id").unwrap();
        let scores = spire_lake::columns::floats(b, "score").unwrap();
        for (u, p) in users.iter().zip(scores.iter()) {
            gap = gap.max((own[u.unwrap()] - p.unwrap()).abs());
            n += 1;
        }
    }
    (n, gap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_whole_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    let report = demo::demo(
        &project,
        &DemoOptions {
            users: 1500,
            days: 16,
            seed: 3,
        },
        &Quiet,
    )
    .await
    .unwrap();

    // Intake reconciles exactly and the generator's noise is there.
    let src = &report.ingest.sources[0];
    let r = &src.reconciliation;
    assert_eq!(r.read, r.accepted + r.dead_lettered + r.duplicates);
    assert!(
        r.dead_lettered > 0 && r.duplicates > 0 && r.bot_flagged > 0,
        "{r:?}"
    );
    let bot_share = r.bot_flagged as f64 / r.accepted as f64;
    assert!((0.02..0.10).contains(&bot_share), "bot share {bot_share}");

    // 20 models trained, evaluated, registered, promoted; rule segments written.
    assert_eq!(report.rows.len(), 20);
    assert!(report.mean_auc > 0.62, "mean AUC {}", report.mean_auc);
    assert!(
        report.mean_oracle_auc > report.mean_auc,
        "the oracle must beat the model"
    );
    assert!(
        (report.mean_control_auc - 0.5).abs() < 0.08,
        "control {}",
        report.mean_control_auc
    );
    let ws = Workspace::open(&project, &LoadOptions::default())
        .await
        .unwrap();
    let models = ws.registry.list_models().await.unwrap();
    assert_eq!(models.len(), 20);
    let runs = ws.registry.list_runs(&Default::default()).await.unwrap();
    let run = &runs[0];
    assert!(run.metrics.contains_key("auc") && run.metrics.contains_key("pr_auc"));
    assert!(
        run.inputs.iter().any(|i| i.table == "events")
            && run.inputs.iter().any(|i| i.table == "features_behaviour")
    );
    assert_eq!(run.config_hash, ws.project.config_hash);

    // Segments: top 10% of the scored users per model segment; rules and combinations too.
    let index = SegmentIndex::load(&ws.lake).await.unwrap();
    let sizes = index.sizes();
    assert_eq!(report.run.scored.len(), 22);
    assert_eq!(
        sizes.len(),
        report.run.scored.iter().filter(|s| s.members > 0).count()
    );
    let size = |name: &str| {
        sizes
            .iter()
            .find(|s| s.segment == name)
            .map_or(0, |s| s.members as i64)
    };
    let gadgets = sizes.iter().find(|s| s.segment == "reads-gadgets").unwrap();
    let scored = report
        .run
        .scored
        .iter()
        .find(|s| s.segment == "reads-gadgets")
        .unwrap();
    assert_eq!(
        gadgets.members,
        ((scored.eligible as f64) * 0.1).ceil() as usize
    );
    let fans = count(&ws.lake, "SELECT COUNT(*) FROM features_behaviour WHERE as_of = (SELECT MAX(as_of) FROM features_behaviour) AND category_gadgets_28d >= 3").await;
    assert_eq!(size("gadget-fans"), fans);
    let travel_not_luxury = count(
        &ws.lake,
        "SELECT COUNT(*) FROM segments t WHERE t.segment = 'reads-travel' AND t.user_id NOT IN (SELECT user_id FROM segments WHERE segment = 'reads-luxury')",
    )
    .await;
    assert_eq!(size("travel-not-luxury"), travel_not_luxury);
    assert!(index.user("no-such-user").is_empty());

    // Running again replaces the same date's memberships instead of duplicating them.
    let before = count(&ws.lake, "SELECT COUNT(*) FROM segments").await;
    spire_pipeline::run::run(&ws, &["reads-gadgets".to_string()], &Quiet)
        .await
        .unwrap();
    assert_eq!(
        count(&ws.lake, "SELECT COUNT(*) FROM segments").await,
        before
    );
    let v = ws
        .registry
        .list_model_versions("reads-gadgets")
        .await
        .unwrap();
    assert_eq!(v.len(), 2, "a second version was registered");

    // Every table opens in a reader that shares none of Spire's code.
    let lake_dir = project.join("spire-data/lake");
    for table in [
        "events_raw",
        "events",
        "dead_letters",
        "features_behaviour",
        "segments",
    ] {
        let ours = count(&ws.lake, &format!("SELECT COUNT(*) FROM {table}")).await;
        let theirs = foreign_read(&lake_dir.join(table), &[]);
        assert_eq!(theirs["rows"].as_i64().unwrap(), ours, "{table}: {theirs}");
    }
    let seg = foreign_read(
        &lake_dir.join("segments"),
        &["--count-where", "segment=reads-gadgets"],
    );
    assert_eq!(
        seg["count:segment=reads-gadgets"].as_i64().unwrap() as usize,
        gadgets.members
    );
    let cols = foreign_read(&lake_dir.join("events"), &[]);
    for c in [
        "event_id",
        "user_id",
        "ts",
        "is_bot",
        "event_date",
        "source_offset",
    ] {
        assert!(
            cols["columns"].as_array().unwrap().iter().any(|x| x == c),
            "{c} missing: {cols}"
        );
    }

    // More spec kinds on the same data: a seed-list lookalike, a `for_each` over a SQL query,
    // and a gate nothing can pass (its champion must not move, and scoring skips it).
    let members = count(
        &ws.lake,
        "SELECT COUNT(*) FROM segments WHERE segment = 'reads-gadgets'",
    )
    .await;
    assert!(members > 10);
    let ctx = ws.lake.session();
    ws.lake.register_all(&ctx).await.unwrap();
    let b = Lake::query(
        &ctx,
        "SELECT user_id FROM segments WHERE segment = 'reads-gadgets' ORDER BY user_id",
    )
    .await
    .unwrap();
    let mut csv = String::from("user_id\n");
    for batch in &b {
        for u in spire_lake::columns::strings(batch, "user_id")
            .unwrap()
            .iter()
            .flatten()
        {
            csv.push_str(u);
            csv.push('\n');
        }
    }
    std::fs::write(project.join("seeds.csv"), csv).unwrap();
    std::fs::write(
        project.join("segments/more.toml"),
        r#"
[[segment]]
name = "gadget-lookalikes"
kind = "model"
feature_set = "behaviour"
label = { kind = "seed_list", path = "seeds.csv" }
output = { min_score = 0.5 }

[[segment]]
name = "brand-{value}"
kind = "model"
feature_set = "behaviour"
for_each = { sql = "SELECT DISTINCT brand FROM events WHERE brand IS NOT NULL ORDER BY brand" }
label = { kind = "future_events", where = "brand = '{value}'", min_count = 1, horizon_days = 3 }
eligibility = "events_28d >= 2"
gate = { min_auc = 0.9999 }

[[segment]]
name = "gadgets-audience-25"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "category = 'gadgets'", min_count = 2, horizon_days = 7 }
model = { l2 = 0.001, l1 = 0.002 }
output = { target_size = 25, write_scores = true }

[[segment]]
name = "gadgets-precise"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "category = 'gadgets'", min_count = 2, horizon_days = 7 }
output = { min_precision = 0.5 }

[[segment]]
name = "gadgets-tuned"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "category = 'gadgets'", min_count = 2, horizon_days = 7 }

[segment.model.tune]
trials = 6
startup_trials = 3
folds = 3
space = { l2 = { log_uniform = [1e-5, 1.0] } }

[[segment]]
name = "gadgets-trees"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "category = 'gadgets'", min_count = 2, horizon_days = 7 }
gate = { min_auc = 0.5 }
output = { top_fraction = 0.1 }

[segment.model]
algorithm = "gbdt"
params = { n_estimators = 60, learning_rate = 0.1, max_depth = 3, seed = 7 }
"#,
    )
    .unwrap();
    // Bring your own model: an ONNX logistic regression trained in scikit-learn (the fixture
    // of crates/spire-ml/tests/fixtures/byom), its ten inputs mapped onto snapshot columns.
    let (fctx, fv) = spire_features::dataset::features_session(&ws.lake, "behaviour")
        .await
        .unwrap();
    let last = spire_features::dataset::latest_as_of(&fctx)
        .await
        .unwrap()
        .unwrap();
    let columns = spire_features::dataset::load(&fctx, "behaviour", fv, last)
        .await
        .unwrap()
        .columns;
    let inputs: Vec<String> = columns.iter().take(10).cloned().collect();
    std::fs::create_dir_all(project.join("models")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../spire-ml/tests/fixtures/byom/onnx_logreg.onnx"),
        project.join("models/logreg.onnx"),
    )
    .unwrap();
    std::fs::write(
        project.join("segments/imported.toml"),
        format!(
            r#"
[[segment]]
name = "gadgets-imported"
kind = "model"
feature_set = "behaviour"
label = {{ kind = "future_events", where = "category = 'gadgets'", min_count = 2, horizon_days = 7 }}
gate = {{ min_auc = 0.0 }}
output = {{ top_fraction = 0.2, write_scores = true }}

[segment.model]
algorithm = "import"
file = "models/logreg.onnx"
features = {inputs:?}
"#
        ),
    )
    .unwrap();
    let ws = Workspace::open(&project, &LoadOptions::default())
        .await
        .unwrap();
    let names = vec![
        "gadgets-imported".to_string(),
        "gadget-lookalikes".to_string(),
        "brand-{value}".to_string(),
        "gadgets-audience-25".to_string(),
        "gadgets-precise".to_string(),
        "gadgets-tuned".to_string(),
        "gadgets-trees".to_string(),
    ];
    let summary = spire_pipeline::run::run(&ws, &names, &Quiet).await.unwrap();
    assert_eq!(
        summary.trained.len(),
        12,
        "1 imported + 1 lookalike + 6 brands + 2 threshold rules + 1 tuned + 1 gbdt"
    );
    let scored = |name: &str| summary.scored.iter().find(|s| s.segment == name).unwrap();

    // An audience of a fixed size, from an elastic-net model (sparse coefficients).
    assert_eq!(scored("gadgets-audience-25").members, 25);
    let v = ws
        .registry
        .get_alias("gadgets-audience-25", "champion")
        .await
        .unwrap()
        .unwrap();
    // Model files sit in MLflow's layout, so MLflow clients can list and fetch them.
    let run = ws.registry.get_run(&v.run_id).await.unwrap();
    let folder = format!("{}/{}/artifacts", run.experiment_id, run.run_id);
    assert_eq!(
        v.artifact_uri,
        ws.artifacts
            .url_of(&format!("{folder}/model.json"))
            .unwrap()
    );
    let listed = ws.artifacts.list_dir(&folder, &folder).await.unwrap();
    assert!(listed.iter().any(|e| e.path == "model.json"), "{listed:?}");
    let model = spire_pipeline::stages::train::load_artifact(&ws.artifacts, &v.artifact_uri, "x")
        .await
        .unwrap();
    let artifact = model.to_artifact().unwrap();
    assert_eq!(artifact.payload["params"]["l1"], 0.002);
    let coefs = artifact.payload["coefficients"].as_array().unwrap();
    assert!(
        coefs.iter().any(|c| c.as_f64() == Some(0.0)),
        "L1 zeroes some coefficients"
    );

    // The imported model was evaluated on held-out users, registered with its own flavor and
    // scored like a native one: written scores equal its own predictions on the snapshot.
    let imported = summary
        .trained
        .iter()
        .find(|t| t.segment == "gadgets-imported")
        .unwrap();
    assert!(imported.evaluation.n_test > 0 && imported.evaluation.auc.is_finite());
    assert!(imported.promoted);
    let run = ws.registry.get_run(&imported.run_id).await.unwrap();
    assert_eq!(run.params["model_format"], "onnx");
    let v = ws
        .registry
        .get_alias("gadgets-imported", "champion")
        .await
        .unwrap()
        .unwrap();
    let onnx = spire_pipeline::stages::train::load_artifact(&ws.artifacts, &v.artifact_uri, "x")
        .await
        .unwrap();
    assert_eq!(onnx.flavor(), "onnx");
    assert_eq!(onnx.feature_names(), inputs.as_slice());
    let (n, gap) = written_vs_own(&ws, "gadgets-imported", onnx.as_ref()).await;
    assert!(gap < 1e-9, "imported: max |written − own| {gap}");
    assert_eq!(n, scored("gadgets-imported").eligible);

    // Scoring serves a feature set's logistic champions with one f32 product: every user's
    // written score agrees with the champion's own (f64) prediction on the snapshot.
    let (n, gap) = written_vs_own(&ws, "gadgets-audience-25", model.as_ref()).await;
    assert!(gap < 1e-5, "fused scoring: max |written − own| {gap}");
    assert_eq!(n, scored("gadgets-audience-25").eligible);

    // min_precision: the cut chosen on held-out users is versioned with the model, recorded
    // with the run, and applied by scoring.
    let precise = summary
        .trained
        .iter()
        .find(|t| t.segment == "gadgets-precise")
        .unwrap();
    let v = ws
        .registry
        .get_alias("gadgets-precise", "champion")
        .await
        .unwrap()
        .expect("a reachable precision passes the gate");
    let cut = v.signature["threshold"]["score"].as_f64().unwrap();
    assert!(v.signature["threshold"]["precision"].as_f64().unwrap() >= 0.5);
    let run = ws.registry.get_run(&precise.run_id).await.unwrap();
    assert_eq!(run.metrics["threshold_score"], cut);
    let below = count(
        &ws.lake,
        &format!(
            "SELECT COUNT(*) FROM segments WHERE segment = 'gadgets-precise' AND score < {cut}"
        ),
    )
    .await;
    assert_eq!(below, 0, "every member scores at least the versioned cut");
    assert!(scored("gadgets-precise").members > 0);

    // Tuning: every trial recorded with the run, the best l2 used for the final fit.
    let tuned = summary
        .trained
        .iter()
        .find(|t| t.segment == "gadgets-tuned")
        .unwrap();
    let run = ws.registry.get_run(&tuned.run_id).await.unwrap();
    let l2: f64 = run.params["tuned_l2"].parse().unwrap();
    assert!((1e-5..=1.0).contains(&l2), "tuned l2 {l2}");
    assert_eq!(run.params["tune_trials"], "6");
    let history = ws
        .registry
        .metric_history(&tuned.run_id, "tune_cv_auc")
        .await
        .unwrap();
    assert_eq!(history.len(), 6, "one point per trial");
    let v = ws
        .registry
        .list_model_versions("gadgets-tuned")
        .await
        .unwrap();
    let artifact =
        spire_pipeline::stages::train::load_artifact(&ws.artifacts, &v[0].artifact_uri, "x")
            .await
            .unwrap()
            .to_artifact()
            .unwrap();
    assert_eq!(artifact.payload["params"]["l2"].as_f64().unwrap(), l2);
    let trials_file = std::path::Path::new(v[0].artifact_uri.strip_prefix("file://").unwrap())
        .with_file_name("tuning.json");
    let trials: serde_json::Value =
        serde_json::from_slice(&std::fs::read(trials_file).unwrap()).unwrap();
    assert_eq!(trials["trials"].as_array().unwrap().len(), 6);
    // Gradient-boosted trees: trained on its own (not in the fused family), registered with
    // its params, promoted, and scored from its artifact like the linear models.
    let trees = summary
        .trained
        .iter()
        .find(|t| t.segment == "gadgets-trees")
        .unwrap();
    assert!(trees.promoted, "{}", trees.gate);
    assert!(
        trees.evaluation.auc > 0.55,
        "gbdt AUC {}",
        trees.evaluation.auc
    );
    assert_eq!(trees.evaluation.iterations, 60, "one tree per round");
    let run = ws.registry.get_run(&trees.run_id).await.unwrap();
    assert_eq!(run.params["algorithm"], "gbdt");
    assert_eq!(run.params["trainer"], "single");
    assert_eq!(run.params["n_estimators"], "60");
    assert_eq!(run.params["growth"], "level_wise");
    assert!(!run.params.contains_key("fused_family_size"));
    let linear = ws.registry.get_run(&precise.run_id).await.unwrap();
    assert_eq!(linear.params["trainer"], "fused");
    assert_eq!(
        linear.params["fused_family_size"], "10",
        "the gbdt segment is not in the family"
    );
    let v = ws
        .registry
        .get_alias("gadgets-trees", "champion")
        .await
        .unwrap()
        .unwrap();
    let model = spire_pipeline::stages::train::load_artifact(&ws.artifacts, &v.artifact_uri, "x")
        .await
        .unwrap();
    assert_eq!(model.flavor(), "gbdt");
    assert!(model.handles_missing());
    assert_eq!(
        model.to_artifact().unwrap().payload["params"]["max_depth"],
        3
    );
    let s = scored("gadgets-trees");
    assert_eq!(s.model_version, Some(v.version));
    assert_eq!(s.members, (s.eligible as f64 * 0.1).ceil() as usize);
    let members = count(
        &ws.lake,
        "SELECT COUNT(*) FROM segments WHERE segment = 'gadgets-trees'",
    )
    .await;
    assert_eq!(members, s.members as i64);

    let lookalike = summary
        .trained
        .iter()
        .find(|t| t.segment == "gadget-lookalikes")
        .unwrap();
    assert!(
        lookalike.evaluation.auc > 0.8,
        "seed members are learnable: {}",
        lookalike.evaluation.auc
    );
    for t in summary
        .trained
        .iter()
        .filter(|t| t.segment.starts_with("brand-"))
    {
        assert!(!t.promoted, "{} passed an impossible gate", t.segment);
        assert!(ws
            .registry
            .get_alias(&t.segment, "champion")
            .await
            .unwrap()
            .is_none());
        let s = summary
            .scored
            .iter()
            .find(|s| s.segment == t.segment)
            .unwrap();
        assert!(s.skipped.is_some() && s.members == 0);
        let as_of = t.as_of;
        let eligible = count(&ws.lake, &format!("SELECT COUNT(*) FROM features_behaviour WHERE as_of = DATE '{as_of}' AND events_28d >= 2")).await;
        let all = count(
            &ws.lake,
            &format!("SELECT COUNT(*) FROM features_behaviour WHERE as_of = DATE '{as_of}'"),
        )
        .await;
        assert_eq!(
            (t.evaluation.n_train + t.evaluation.n_test) as i64,
            eligible,
            "eligibility filters users"
        );
        assert!(eligible < all);
    }

    // Tracking of the invocation itself: a pipeline run whose id tags the `segments` commit
    // it made, and parent of every training run it started.
    use spire_pipeline::recovery::{self, PARENT_TAG, PROCESS_TAG, RUN_ID_TAG};
    use spire_registry::{NewRun, RunStatus};
    let pipeline_run = ws.registry.get_run(&summary.run_id).await.unwrap();
    assert_eq!(pipeline_run.status, RunStatus::Finished);
    assert_eq!(
        ws.lake
            .find_tagged_commit("segments", RUN_ID_TAG, &summary.run_id)
            .await
            .unwrap(),
        summary.segments_version
    );
    for t in &summary.trained {
        let r = ws.registry.get_run(&t.run_id).await.unwrap();
        assert_eq!(r.tags.get(PARENT_TAG), Some(&summary.run_id));
    }

    // Runs left half-done by a killed process: settled from what the lake and registry hold.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ticks = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    child.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let dead = format!("{}:{pid}:{ticks}", host.trim());
    let new_run = |segment: &str, kind: Option<&str>, process: &str| NewRun {
        segment: segment.into(),
        experiment: recovery::PIPELINE_EXPERIMENT.into(),
        params: Default::default(),
        tags: [(PROCESS_TAG.to_string(), process.to_string())]
            .into_iter()
            .chain(kind.map(|k| (recovery::KIND_TAG.to_string(), k.to_string())))
            .collect(),
        inputs: Vec::new(),
        config_hash: String::new(),
        spire_version: String::new(),
        git_commit: None,
    };
    // Killed after its segments commit: the commit carries its id.
    let committed = ws
        .registry
        .create_run(new_run("*", Some("pipeline"), &dead))
        .await
        .unwrap();
    let tagged = Workspace {
        lake: ws.lake.tagged([(RUN_ID_TAG, committed.as_str())]),
        ..ws.clone()
    };
    let all = spire_pipeline::segments::resolve(&ws).await.unwrap();
    let rules = spire_pipeline::segments::select(&all, &["reads-gadgets".to_string()]).unwrap();
    let (_, v) = spire_pipeline::stages::score::score(&tagged, &rules, None, &Quiet)
        .await
        .unwrap();
    // Killed before any commit; a training run that never registered; and a run whose
    // process still lives (this one), which must be left alone.
    let uncommitted = ws
        .registry
        .create_run(new_run("*", Some("pipeline"), &dead))
        .await
        .unwrap();
    let training = ws
        .registry
        .create_run(new_run("gadgets-tuned", None, &dead))
        .await
        .unwrap();
    let me = std::fs::read_to_string("/proc/self/stat").unwrap();
    let my_ticks = me[me.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    let live = ws
        .registry
        .create_run(new_run(
            "*",
            Some("pipeline"),
            &format!("{}:{}:{my_ticks}", host.trim(), std::process::id()),
        ))
        .await
        .unwrap();
    let settled = recovery::recover(&ws).await.unwrap();
    let status_of = |id: &str| {
        settled
            .iter()
            .find(|r| r.run_id == id)
            .map(|r| (r.status, r.reason.clone()))
    };
    let (st, why) = status_of(&committed).unwrap();
    assert_eq!(st, RunStatus::Finished, "{why}");
    assert!(why.contains(&format!("version {}", v.unwrap())), "{why}");
    assert_eq!(status_of(&uncommitted).unwrap().0, RunStatus::Failed);
    assert_eq!(status_of(&training).unwrap().0, RunStatus::Failed);
    assert!(
        status_of(&live).is_none(),
        "a live process's run is not touched"
    );
    assert_eq!(settled.len(), 3);
    let r = ws.registry.get_run(&uncommitted).await.unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert!(r.error.unwrap().contains("before its `segments` commit"));
    assert!(
        recovery::recover(&ws).await.unwrap().is_empty(),
        "settled once"
    );
}
