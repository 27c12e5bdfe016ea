//! Score → threshold → segments: every user of a snapshot, every selected segment.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use spire_core::config::{SegmentExpr, SegmentKind, Threshold};
use spire_core::time::days_since_epoch;
use spire_features::dataset::{self, FeatureMatrix};
use spire_lake::arrow::array::{Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use spire_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use spire_lake::datafusion::prelude::{col, lit};
use spire_lake::datafusion::scalar::ScalarValue;
use spire_lake::tables::{SCORES, SEGMENTS};
use spire_ml::fused::LinearScorer;
use spire_ml::{LogisticRegression, Matrix, Predictor};
use spire_registry::{ModelRegistry, ModelVersion};

use crate::error::{PipelineError, Result};
use crate::progress::Progress;
use crate::segments::ResolvedSegment;
use crate::stages::train::read_artifact;
use crate::workspace::Workspace;

/// One segment's scoring outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScoreOutcome {
    /// Segment.
    pub segment: String,
    /// Snapshot date scored.
    pub as_of: NaiveDate,
    /// Champion version used (model segments).
    pub model_version: Option<i64>,
    /// Users eligible.
    pub eligible: usize,
    /// Members written.
    pub members: usize,
    /// Lowest member score (model segments).
    pub threshold: Option<f64>,
    /// Why a segment was skipped, if it was.
    pub skipped: Option<String>,
}

/// Memberships of one segment.
struct Members {
    users: Vec<(String, f64)>,
    model_version: Option<i64>,
    all_scores: Option<Vec<(String, f64)>>,
}

/// Schema of the `segments` table.
pub fn segments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
        Field::new("model_version", DataType::Int64, true),
        Field::new("as_of", DataType::Date32, false),
    ]))
}

/// Logistic-regression champions of one feature set scored by one product: at most this
/// many per product, so `users × block` `f32` scores stay within memory.
const SCORE_BLOCK: usize = 256;

/// A model segment's champion, loaded.
struct Champion {
    version: ModelVersion,
    model: Loaded,
}

/// A champion's model: logistic regressions are scored together, anything else alone.
enum Loaded {
    Linear(LogisticRegression),
    Other(Box<dyn Predictor>),
}

/// Scores `segments` on the snapshot as of `as_of` (the latest snapshot of each feature set
/// when `None`) and writes their memberships as one new version of `segments` (replacing
/// any earlier rows of the same segments and date, so a re-run never duplicates).
///
/// The logistic-regression champions of a feature set are scored together, one `f32`
/// matrix product and a sigmoid per block of [`SCORE_BLOCK`] models
/// ([`spire_ml::fused::LinearScorer`]); other flavors score one by one.
pub async fn score(
    ws: &Workspace,
    segments: &[ResolvedSegment],
    as_of: Option<NaiveDate>,
    progress: &dyn Progress,
) -> Result<(Vec<ScoreOutcome>, Option<i64>)> {
    progress.start("score", segments.len() as u64);
    let mut snapshots: HashMap<
        String,
        (
            spire_lake::datafusion::prelude::SessionContext,
            FeatureMatrix,
        ),
    > = HashMap::new();
    let mut members: BTreeMap<String, Members> = BTreeMap::new();
    let mut outcomes: HashMap<String, ScoreOutcome> = HashMap::new();
    let mut date: Option<NaiveDate> = as_of;
    // Snapshots, rule segments and champions, in segment order.
    let mut champions: Vec<(&ResolvedSegment, Champion)> = Vec::new();
    for s in segments
        .iter()
        .filter(|s| !matches!(s.spec.kind, SegmentKind::RuleCombine { .. }))
    {
        let fs = &s.spec.feature_set;
        if !snapshots.contains_key(fs) {
            let (ctx, v) = dataset::features_session(&ws.lake, fs).await?;
            let d = match as_of {
                Some(d) => d,
                None => dataset::latest_as_of(&ctx).await?.ok_or_else(|| {
                    PipelineError::NotFound(format!(
                        "feature set `{fs}` has no snapshot: run `spire features build`"
                    ))
                })?,
            };
            let m = dataset::load(&ctx, fs, v, d).await?;
            snapshots.insert(fs.clone(), (ctx, m));
        }
        let Some((ctx, m)) = snapshots.get(fs) else {
            continue;
        };
        date = Some(date.map_or(m.as_of, |d| d.max(m.as_of)));
        let name = &s.spec.name;
        match &s.spec.kind {
            SegmentKind::RulePredicate { predicate } => {
                let users = dataset::eligible(ctx, m.as_of, predicate, name).await?;
                let n = users.len();
                let mut users: Vec<(String, f64)> = users.into_iter().map(|u| (u, 1.0)).collect();
                users.sort_by(|a, b| a.0.cmp(&b.0));
                outcomes.insert(
                    name.clone(),
                    ScoreOutcome {
                        segment: name.clone(),
                        as_of: m.as_of,
                        model_version: None,
                        eligible: m.user_ids.len().max(n),
                        members: users.len(),
                        threshold: None,
                        skipped: None,
                    },
                );
                members.insert(
                    name.clone(),
                    Members {
                        users,
                        model_version: None,
                        all_scores: None,
                    },
                );
                progress.update("score", outcomes.len() as u64);
            }
            SegmentKind::Model(_) => {
                // An unknown model (never trained) has no champion; any other registry error
                // is an error, not a silent skip.
                let version = match ws.registry.get_alias(name, "champion").await {
                    Ok(c) => c,
                    Err(e) if e.kind() == spire_core::ErrorKind::NotFound => None,
                    Err(e) => return Err(e.into()),
                };
                let Some(version) = version else {
                    outcomes.insert(
                        name.clone(),
                        ScoreOutcome {
                            segment: name.clone(),
                            as_of: m.as_of,
                            model_version: None,
                            eligible: 0,
                            members: 0,
                            threshold: None,
                            skipped: Some(
                                "no champion yet (never trained, or no version passed the gate)"
                                    .into(),
                            ),
                        },
                    );
                    continue;
                };
                let artifact = read_artifact(&ws.artifacts, &version.artifact_uri, name).await?;
                let model_err = |source| PipelineError::Model {
                    segment: name.clone(),
                    source,
                };
                let model = if artifact.flavor == LogisticRegression::FLAVOR {
                    Loaded::Linear(LogisticRegression::from_artifact(&artifact).map_err(model_err)?)
                } else {
                    Loaded::Other(spire_ml::load_predictor(&artifact).map_err(model_err)?)
                };
                champions.push((s, Champion { version, model }));
            }
            SegmentKind::RuleCombine { .. } => {}
        }
    }

    // Logistic champions: per feature set and feature list, in blocks, one product each.
    let mut linear: BTreeMap<(&str, &[String]), Vec<usize>> = BTreeMap::new();
    for (i, (s, c)) in champions.iter().enumerate() {
        if let Loaded::Linear(lr) = &c.model {
            linear
                .entry((s.spec.feature_set.as_str(), lr.feature_names()))
                .or_default()
                .push(i);
        }
    }
    for ((fs, names), idx) in &linear {
        let Some((ctx, m)) = snapshots.get(*fs) else {
            continue;
        };
        let first = champions[idx[0]].0.spec.name.as_str();
        let x = aligned_matrix(m, names, first)?;
        for block in idx.chunks(SCORE_BLOCK) {
            let models: Vec<&LogisticRegression> = block
                .iter()
                .filter_map(|&i| match &champions[i].1.model {
                    Loaded::Linear(lr) => Some(lr),
                    Loaded::Other(_) => None,
                })
                .collect();
            let block_err = |source| PipelineError::Model {
                segment: block
                    .iter()
                    .map(|&i| champions[i].0.spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                source,
            };
            let scores = LinearScorer::new(&models)
                .and_then(|scorer| scorer.predict_proba(&x))
                .map_err(block_err)?;
            for (j, &i) in block.iter().enumerate() {
                let (s, c) = &champions[i];
                let (result, outcome) = finish(s, c, ctx, m, scores.column(j)).await?;
                outcomes.insert(s.spec.name.clone(), outcome);
                members.insert(s.spec.name.clone(), result);
                progress.update("score", outcomes.len() as u64);
            }
        }
    }
    // Other flavors, one by one.
    for (s, c) in &champions {
        let Loaded::Other(model) = &c.model else {
            continue;
        };
        let Some((ctx, m)) = snapshots.get(&s.spec.feature_set) else {
            continue;
        };
        let name = &s.spec.name;
        let x = aligned_matrix(m, model.feature_names(), name)?;
        let scores = model
            .predict_proba(&x)
            .map_err(|source| PipelineError::Model {
                segment: name.clone(),
                source,
            })?;
        let (result, outcome) = finish(s, c, ctx, m, scores).await?;
        outcomes.insert(name.clone(), outcome);
        members.insert(name.clone(), result);
        progress.update("score", outcomes.len() as u64);
    }
    let universe: HashSet<String> = snapshots
        .values()
        .flat_map(|(_, m)| m.user_ids.iter().cloned())
        .collect();
    for s in segments {
        if let SegmentKind::RuleCombine { expr } = &s.spec.kind {
            let set = evaluate(expr, &members, &universe).map_err(PipelineError::InvalidInput)?;
            let mut users: Vec<(String, f64)> = set.into_iter().map(|u| (u, 1.0)).collect();
            users.sort_by(|a, b| a.0.cmp(&b.0));
            outcomes.insert(
                s.spec.name.clone(),
                ScoreOutcome {
                    segment: s.spec.name.clone(),
                    as_of: date.unwrap_or_default(),
                    model_version: None,
                    eligible: universe.len(),
                    members: users.len(),
                    threshold: None,
                    skipped: None,
                },
            );
            members.insert(
                s.spec.name.clone(),
                Members {
                    users,
                    model_version: None,
                    all_scores: None,
                },
            );
        }
    }
    // Outcomes in the order the segments were given.
    let outcomes: Vec<ScoreOutcome> = segments
        .iter()
        .filter_map(|s| outcomes.remove(&s.spec.name))
        .collect();
    let Some(date) = date else {
        progress.finish("score", "nothing to score");
        return Ok((outcomes, None));
    };
    let version = write(ws, &members, date).await?;
    let total: usize = outcomes.iter().map(|o| o.members).sum();
    progress.finish(
        "score",
        &format!(
            "{} segments scored as of {date}: {total} memberships",
            members.len()
        ),
    );
    Ok((outcomes, version))
}

/// Eligibility and the output rule applied to one model segment's scores (aligned with the
/// snapshot's users): its memberships and outcome.
async fn finish(
    s: &ResolvedSegment,
    champion: &Champion,
    ctx: &spire_lake::datafusion::prelude::SessionContext,
    m: &FeatureMatrix,
    scores: Vec<f64>,
) -> Result<(Members, ScoreOutcome)> {
    let name = &s.spec.name;
    let SegmentKind::Model(spec) = &s.spec.kind else {
        return Err(PipelineError::InvalidInput(format!(
            "segment `{name}` is not a model segment"
        )));
    };
    let version = &champion.version;
    let eligible: Option<HashSet<String>> = match &spec.eligibility {
        Some(p) => Some(dataset::eligible(ctx, m.as_of, p, name).await?),
        None => None,
    };
    let mut scored: Vec<(String, f64)> = m
        .user_ids
        .iter()
        .zip(scores)
        .filter(|(u, _)| eligible.as_ref().is_none_or(|e| e.contains(*u)))
        .map(|(u, p)| (u.clone(), p))
        .collect();
    let n = scored.len();
    let all_scores = s.spec.output.write_scores.then(|| scored.clone());
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let keep = match s.spec.output.threshold {
        Threshold::TopFraction(f) => ((n as f64) * f).ceil() as usize,
        Threshold::MinScore(t) => scored.iter().take_while(|(_, p)| *p >= t).count(),
        Threshold::TargetSize(size) => usize::try_from(size).unwrap_or(usize::MAX),
        Threshold::MinPrecision(_) => {
            let Some(t) = version.signature["threshold"]["score"].as_f64() else {
                return Err(PipelineError::InvalidInput(format!(
                    "segment `{name}`: output.min_precision needs the score threshold chosen \
                     at training, but champion v{} has none (trained under another output \
                     rule); retrain with `spire run {name}`",
                    version.version
                )));
            };
            scored.iter().take_while(|(_, p)| *p >= t).count()
        }
    };
    scored.truncate(keep.min(n));
    let outcome = ScoreOutcome {
        segment: name.clone(),
        as_of: m.as_of,
        model_version: Some(version.version),
        eligible: n,
        members: scored.len(),
        threshold: scored.last().map(|u| u.1),
        skipped: None,
    };
    Ok((
        Members {
            users: scored,
            model_version: Some(version.version),
            all_scores,
        },
        outcome,
    ))
}

fn evaluate(
    expr: &SegmentExpr,
    members: &BTreeMap<String, Members>,
    universe: &HashSet<String>,
) -> Result<HashSet<String>, String> {
    Ok(match expr {
        SegmentExpr::Segment(n) => members
            .get(n)
            .ok_or_else(|| {
                format!("segment `{n}` has no memberships in this run (is it trained and scored?)")
            })?
            .users
            .iter()
            .map(|(u, _)| u.clone())
            .collect(),
        SegmentExpr::And(a, b) => {
            let b = evaluate(b, members, universe)?;
            evaluate(a, members, universe)?
                .into_iter()
                .filter(|u| b.contains(u))
                .collect()
        }
        SegmentExpr::Or(a, b) => {
            let mut a = evaluate(a, members, universe)?;
            a.extend(evaluate(b, members, universe)?);
            a
        }
        SegmentExpr::Not(a) => {
            let a = evaluate(a, members, universe)?;
            universe
                .iter()
                .filter(|u| !a.contains(*u))
                .cloned()
                .collect()
        }
    })
}

/// The snapshot's columns in the order the model expects; a missing column is an error
/// telling the user to retrain.
fn aligned_matrix(m: &FeatureMatrix, names: &[String], segment: &str) -> Result<Matrix> {
    let idx = m.column_indices(names).map_err(|missing| {
        PipelineError::InvalidInput(format!(
            "segment `{segment}`: the champion expects feature `{}`, which snapshot {} of `{}` lacks; retrain with `spire run {segment}`",
            missing[0], m.as_of, m.feature_set
        ))
    })?;
    let ncol = m.columns.len();
    let mut data = Vec::with_capacity(m.user_ids.len() * idx.len());
    for r in 0..m.user_ids.len() {
        let row = &m.values[r * ncol..(r + 1) * ncol];
        data.extend(idx.iter().map(|i| row[*i]));
    }
    Matrix::new(m.user_ids.len(), idx.len(), data).map_err(|source| PipelineError::Model {
        segment: segment.into(),
        source,
    })
}

fn batch(rows: &[(String, String, f64, Option<i64>)], date: i32) -> Result<RecordBatch> {
    RecordBatch::try_new(
        segments_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.as_str()),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from(vec![date; rows.len()])),
        ],
    )
    .map_err(|source| {
        PipelineError::Lake(spire_lake::LakeError::Arrow {
            context: "segments batch".into(),
            source,
        })
    })
}

async fn write(
    ws: &Workspace,
    members: &BTreeMap<String, Members>,
    date: NaiveDate,
) -> Result<Option<i64>> {
    let d = days_since_epoch(date);
    let mut rows = Vec::new();
    let mut scores = Vec::new();
    for (segment, m) in members {
        rows.extend(
            m.users
                .iter()
                .map(|(u, p)| (u.clone(), segment.clone(), *p, m.model_version)),
        );
        if let Some(all) = &m.all_scores {
            scores.extend(
                all.iter()
                    .map(|(u, p)| (u.clone(), segment.clone(), *p, m.model_version)),
            );
        }
    }
    let names: Vec<_> = members.keys().map(|s| lit(s.as_str())).collect();
    let predicate = col("as_of")
        .eq(lit(ScalarValue::Date32(Some(d))))
        .and(col("segment").in_list(names, false));
    let version = ws
        .lake
        .overwrite(
            SEGMENTS,
            vec![batch(&rows, d)?],
            &["as_of"],
            Some(predicate.clone()),
        )
        .await?;
    if !scores.is_empty() {
        ws.lake
            .overwrite(
                SCORES,
                vec![batch(&scores, d)?],
                &["as_of"],
                Some(predicate),
            )
            .await?;
    }
    Ok(version)
}
