//! `bench/tuning`: does warm-starting a `for_each` family's tuning from earlier members
//! reach the same cross-validated AUC in fewer trials?
//!
//! usage: `cargo run --release -p spire-ml --example bench_tuning -- DATA_DIR
//!         [--rows N] [--members M] [--budget B] [--reference R]` — prints one JSON object.
//!
//! Each member is one label column of the `bench/training` data, on its first N rows. For
//! every member, a long TPE search (R trials) sets the target AUC (its best minus 0.001);
//! then TPE with a budget of B trials runs cold and warm (warm = seeded with the trials of
//! all earlier members' warm searches), and the trial at which each first reaches the
//! target is recorded (B + 1 when it never does).

use spire_ml::eval::KFold;
use spire_ml::fused::LabelMatrix;
use spire_ml::tune::{tune, Objective, ParamMap, SearchSpace, Trial, TrialState, TuneParams};
use spire_ml::{Matrix, MlError};

struct Cv {
    x: Matrix,
    y: Vec<bool>,
    names: Vec<String>,
    folds: spire_ml::Folds,
}

impl Objective for Cv {
    fn folds(&self) -> usize {
        self.folds.k()
    }

    fn evaluate_fold(&self, params: &ParamMap, fold: usize) -> Result<f64, MlError> {
        let split = self
            .folds
            .split(fold)
            .ok_or_else(|| MlError::Shape("no fold".into()))?;
        let est = spire_ml::algorithms::estimator(
            "logistic_regression",
            serde_json::Value::Object(params.clone()),
        )?;
        let yt: Vec<bool> = split.train.iter().map(|&i| self.y[i]).collect();
        let yv: Vec<bool> = split.test.iter().map(|&i| self.y[i]).collect();
        let m = est.fit_boxed(&self.x.select_rows(&split.train), &yt, &self.names)?;
        let p = m.predict_proba(&self.x.select_rows(&split.test))?;
        spire_ml::roc_auc(&yv, &p).ok_or_else(|| MlError::Degenerate("one class".into()))
    }
}

fn first_reaching(trials: &[Trial], target: f64) -> usize {
    trials
        .iter()
        .position(|t| t.state == TrialState::Complete && t.value.is_some_and(|v| v >= target))
        .map_or(trials.len() + 1, |i| i + 1)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().ok_or("usage: bench_tuning DATA_DIR")?);
    let flag = |name: &str, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args.get(i + 1).ok_or("flag needs a value")?.parse()?),
            None => Ok(default),
        }
    };
    let (rows, members, budget, reference) = (
        flag("--rows", 3000)?,
        flag("--members", 12)?,
        flag("--budget", 12)?,
        flag("--reference", 40)?,
    );
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("meta.json"))?)?;
    let get = |k: &str| {
        meta[k]
            .as_u64()
            .map(|v| v as usize)
            .ok_or("meta.json lacks a size")
    };
    let (n, d, m) = (get("users")?, get("features")?, get("models")?);
    let rows = rows.min(n);
    let xb = std::fs::read(dir.join("x.f32"))?;
    let x: Vec<f64> = xb[..rows * d * 4]
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    let x = Matrix::new(rows, d, x)?;
    let yb = std::fs::read(dir.join("y.u8"))?;
    let labels = LabelMatrix::from_cells(rows, m, yb[..rows * m].to_vec())?;
    let names: Vec<String> = (0..d).map(|k| format!("f{k}")).collect();
    let space = SearchSpace::parse("l2=log_uniform:1e-6:10,l1=log_uniform:1e-7:0.1")?;
    let keys: Vec<String> = (0..rows).map(|i| format!("u{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();

    let mut warm_pool: Vec<Vec<Trial>> = Vec::new();
    let mut out = Vec::new();
    for j in 0..members.min(m) {
        let (_, y) = labels.column(j);
        let folds = KFold::new(3, 7)?.stratified_folds(&keys, &y)?;
        let cv = Cv {
            x: x.clone(),
            y,
            names: names.clone(),
            folds,
        };
        let params = |trials, seed| TuneParams {
            trials,
            seed,
            prune: false,
            ..TuneParams::default()
        };
        let long = tune(&space, &params(reference, 1000 + j as u64), &cv, &[])?;
        let target = long.best().value.unwrap_or(f64::NAN) - 0.001;
        let cold = tune(&space, &params(budget, j as u64), &cv, &[])?;
        let studies: Vec<&[Trial]> = warm_pool.iter().map(Vec::as_slice).collect();
        let warm = tune(&space, &params(budget, j as u64), &cv, &studies)?;
        let (c, w) = (
            first_reaching(&cold.trials, target),
            first_reaching(&warm.trials, target),
        );
        eprintln!("member {j}: target {target:.4}: cold {c}, warm {w} trials");
        out.push(serde_json::json!({
            "member": j, "target": target, "cold_trials": c, "warm_trials": w,
            "cold_best": cold.best().value, "warm_best": warm.best().value,
            "warm_studies": warm_pool.len(),
        }));
        warm_pool.push(warm.trials.clone());
    }
    let later: Vec<&serde_json::Value> = out.iter().skip(1).collect();
    let mean = |k: &str| {
        later.iter().filter_map(|v| v[k].as_f64()).sum::<f64>() / later.len().max(1) as f64
    };
    println!(
        "{}",
        serde_json::json!({
            "rows": rows, "members": out.len(), "budget": budget, "reference": reference,
            "mean_cold_trials_to_target": mean("cold_trials"),
            "mean_warm_trials_to_target": mean("warm_trials"),
            "mean_cold_best": mean("cold_best"),
            "mean_warm_best": mean("warm_best"),
            "per_member": out,
        })
    );
    Ok(())
}
