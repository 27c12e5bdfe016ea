//! `spire lake optimize|vacuum`: Delta table upkeep, table by table.

use spire_lake::maintenance::{OptimizeReport, VacuumReport};
use spire_lake::tables;
use spire_pipeline::{PipelineError, Result, Workspace};

use crate::cli::{Cli, LakeCommand};
use crate::output::{self, table};

/// The tables a command acts on: those named, or every table of the lake (listed from a
/// local lake's folders; for an object-store lake, the tables the project's config implies).
async fn tables_of(ws: &Workspace, named: &[String]) -> Result<Vec<String>> {
    if !named.is_empty() {
        return Ok(named.to_vec());
    }
    let listed = ws.lake.list_tables()?;
    if !listed.is_empty() {
        return Ok(listed);
    }
    let implied = tables::all(ws.project.feature_sets.iter().map(|f| f.name.as_str()));
    let mut present = Vec::new();
    for t in implied {
        if ws.lake.version(&t).await?.is_some() {
            present.push(t);
        }
    }
    Ok(present)
}

/// Runs `spire lake ...`, reporting each table as it is done.
pub async fn run(cli: &Cli, ws: &Workspace, command: &LakeCommand) -> Result<()> {
    match command {
        LakeCommand::Optimize { tables, target_mb } => {
            let target = target_mb
                .checked_mul(1024 * 1024)
                .filter(|b| *b > 0)
                .ok_or_else(|| {
                    PipelineError::InvalidInput(format!(
                        "--target-mb {target_mb}: give a size between 1 and {} MiB",
                        u64::MAX / (1024 * 1024)
                    ))
                })?;
            let mut reports: Vec<OptimizeReport> = Vec::new();
            for t in tables_of(ws, tables).await? {
                let r = ws.lake.optimize(&t, target).await?;
                if !cli.json {
                    eprintln!(
                        "{t}: {} small files → {} ({:.1} MiB)",
                        r.files_removed,
                        r.files_added,
                        r.bytes_added as f64 / 1048576.0
                    );
                }
                reports.push(r);
            }
            if cli.json {
                output::json(&reports);
            } else {
                let rows: Vec<Vec<String>> = reports
                    .iter()
                    .map(|r| {
                        vec![
                            r.table.clone(),
                            r.files_removed.to_string(),
                            r.files_added.to_string(),
                            r.partitions_optimized.to_string(),
                            r.version.map_or("-".into(), |v| v.to_string()),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "table",
                        "files before",
                        "files after",
                        "partitions",
                        "version",
                    ],
                    &rows,
                );
            }
        }
        LakeCommand::Vacuum {
            tables,
            retain_hours,
            dry_run,
            force,
        } => {
            let mut reports: Vec<VacuumReport> = Vec::new();
            for t in tables_of(ws, tables).await? {
                let r = ws.lake.vacuum(&t, *retain_hours, *dry_run, *force).await?;
                if !cli.json {
                    let verb = if *dry_run { "would delete" } else { "deleted" };
                    eprintln!("{t}: {verb} {} files", r.files.len());
                }
                reports.push(r);
            }
            if cli.json {
                output::json(&reports);
            } else {
                let total: usize = reports.iter().map(|r| r.files.len()).sum();
                let verb = if *dry_run { "would delete" } else { "deleted" };
                println!(
                    "{verb} {total} files no version of the last {retain_hours} hours needs, \
                     in {} tables",
                    reports.len()
                );
            }
        }
    }
    Ok(())
}
