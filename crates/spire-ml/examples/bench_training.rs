//! Spire's side of `bench/training`: fused training of every label column of the benchmark
//! data as one family, then scoring every user with every model.
//!
//! usage: `cargo run --release -p spire-ml --example bench_training -- DATA_DIR
//!         [--train-fraction F] [--c C] [--sample K]` — prints one JSON object.

use std::time::Instant;

use spire_ml::fused::{FamilyParams, LabelMatrix, Member};
use spire_ml::{l2_from_sklearn_c, roc_auc, Matrix};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().ok_or("usage: bench_training DATA_DIR")?);
    let flag = |name: &str, default: f64| -> Result<f64, Box<dyn std::error::Error>> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args.get(i + 1).ok_or("flag needs a value")?.parse()?),
            None => Ok(default),
        }
    };
    let train_fraction = flag("--train-fraction", 0.8)?;
    let c = flag("--c", 1.0)?;
    let sample = flag("--sample", 10.0)? as usize;

    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("meta.json"))?)?;
    let get = |k: &str| {
        meta[k]
            .as_u64()
            .map(|v| v as usize)
            .ok_or("meta.json lacks a size")
    };
    let (n, d, m) = (get("users")?, get("features")?, get("models")?);
    let t0 = Instant::now();
    let xb = std::fs::read(dir.join("x.f32"))?;
    let x: Vec<f64> = xb
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    drop(xb);
    let y = std::fs::read(dir.join("y.u8"))?;
    let load_seconds = t0.elapsed().as_secs_f64();
    let n_train = (n as f64 * train_fraction) as usize;
    let x_train = Matrix::new(n_train, d, x[..n_train * d].to_vec())?;
    let x_all = Matrix::new(n, d, x)?;
    let labels = LabelMatrix::from_cells(n_train, m, y[..n_train * m].to_vec())?;
    let names: Vec<String> = (0..d).map(|k| format!("f{k}")).collect();
    let l2 = l2_from_sklearn_c(c, n_train);
    let members: Vec<Member> = (0..m).map(|j| Member::l2(format!("m{j}"), j, l2)).collect();

    let t0 = Instant::now();
    let family = FamilyParams {
        tol: 1e-5,
        ..FamilyParams::default()
    }
    .validate()?
    .fit(&x_train, &names, &labels, &members)?;
    let fit_seconds = t0.elapsed().as_secs_f64();

    // Best of three, as for numpy's GEMM on the peer side.
    let mut gemm_seconds = f64::INFINITY;
    for _ in 0..3 {
        let t0 = Instant::now();
        let margins = family.decision_function(&x_all)?;
        gemm_seconds = gemm_seconds.min(t0.elapsed().as_secs_f64());
        drop(margins);
    }
    let mut score_seconds = f64::INFINITY;
    let mut scores = None;
    for _ in 0..3 {
        drop(scores.take()); // free the previous 4 GB before the next run
        let t0 = Instant::now();
        let s = family.predict_proba(&x_all)?;
        score_seconds = score_seconds.min(t0.elapsed().as_secs_f64());
        scores = Some(s);
    }
    let scores = scores.ok_or("no scores")?;

    let aucs: Vec<f64> = (0..m)
        .map(|j| {
            let yt: Vec<bool> = (n_train..n).map(|i| y[i * m + j] == 1).collect();
            let p: Vec<f64> = (n_train..n)
                .map(|i| f64::from(scores.get(i, j).unwrap_or(f32::NAN)))
                .collect();
            roc_auc(&yt, &p).unwrap_or(f64::NAN)
        })
        .collect();
    let sample_idx: Vec<usize> = (0..sample).map(|i| i * m / sample).collect();
    let iterations: Vec<usize> = family.members().iter().map(|f| f.iterations).collect();
    let converged = family
        .members()
        .iter()
        .filter(|f| f.stop.is_converged())
        .count();
    let flops = 2.0 * n as f64 * (d + 1) as f64 * m as f64;
    let out = serde_json::json!({
        "users": n, "features": d, "models": m, "train_rows": n_train,
        "threads": rayon::current_num_threads(),
        "load_seconds": load_seconds,
        "fit_seconds": fit_seconds,
        "passes": family.passes(),
        "mean_iterations": iterations.iter().sum::<usize>() as f64 / m as f64,
        "max_iterations": iterations.iter().max(),
        "converged": converged,
        "mean_auc": aucs.iter().sum::<f64>() / m as f64,
        "sample_aucs": sample_idx.iter().map(|&j| aucs[j]).collect::<Vec<_>>(),
        "score_gemm_seconds": gemm_seconds,
        "score_gemm_gflops": flops / gemm_seconds / 1e9,
        "score_seconds": score_seconds,
        "score_gflops": flops / score_seconds / 1e9,
    });
    println!("{out}");
    Ok(())
}
