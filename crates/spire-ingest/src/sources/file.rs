//! The `file` source: JSON Lines and Parquet files matched by a glob.
//!
//! Each file is one partition (its path); offsets are 1-based line numbers (JSON Lines) or
//! row numbers (Parquet). Parquet rows are handed to the parser as JSON objects so both
//! formats share one set of parsing rules.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use spire_core::config::FileFormat;
use spire_lake::arrow::json::LineDelimitedWriter;
use spire_lake::deltalake::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};

use crate::error::{IngestError, Result};
use crate::record::{Position, RawRecord};
use crate::source::{Checkpoints, Source};

/// Reads files matched by a glob, in path order.
pub struct FileSource {
    name: String,
    files: Vec<PathBuf>,
    format: Option<FileFormat>,
    next_file: usize,
    current: Option<OpenFile>,
    checkpoints: Checkpoints,
    empty_files: Vec<PathBuf>,
}

enum Reader {
    Lines(BufReader<File>),
    Parquet {
        reader: ParquetRecordBatchReader,
        pending: std::vec::IntoIter<Vec<u8>>,
    },
}

struct OpenFile {
    partition: String,
    reader: Reader,
    offset: i64,
    skip_to: i64,
}

impl FileSource {
    /// A source over the files matching `pattern` (a path or a glob).
    pub fn new(name: &str, pattern: &str, format: Option<FileFormat>) -> Result<FileSource> {
        let err = |message: String| IngestError::Source {
            source_name: name.to_string(),
            message,
        };
        let paths = glob::glob(pattern)
            .map_err(|e| err(format!("`{pattern}` is not a valid glob: {e}")))?;
        let mut files = Vec::new();
        for p in paths {
            let p =
                p.map_err(|e| err(format!("cannot read {}: {}", e.path().display(), e.error())))?;
            if p.is_file() {
                files.push(p);
            }
        }
        if files.is_empty() {
            return Err(err(format!("no file matches `{pattern}`: check the path (relative paths are relative to the project folder)")));
        }
        files.sort();
        for f in &files {
            if format.is_none() && format_of(f).is_none() {
                return Err(err(format!(
                    "{}: unknown extension; use .jsonl/.json/.ndjson or .parquet, or set `format` on the source",
                    f.display()
                )));
            }
        }
        Ok(FileSource {
            name: name.to_string(),
            files,
            format,
            next_file: 0,
            current: None,
            checkpoints: Checkpoints::new(),
            empty_files: Vec::new(),
        })
    }

    /// Files that held no records at all (reported to the user, never silently skipped).
    pub fn empty_files(&self) -> &[PathBuf] {
        &self.empty_files
    }

    fn open_next(&mut self) -> Result<bool> {
        let Some(path) = self.files.get(self.next_file).cloned() else {
            return Ok(false);
        };
        self.next_file += 1;
        let err = |message: String| IngestError::Source {
            source_name: self.name.clone(),
            message,
        };
        let file =
            File::open(&path).map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
        if file.metadata().map(|m| m.len() == 0).unwrap_or(false) {
            self.empty_files.push(path.clone());
        }
        let format = self
            .format
            .or_else(|| format_of(&path))
            .unwrap_or(FileFormat::JsonLines);
        let reader = match format {
            FileFormat::JsonLines => Reader::Lines(BufReader::with_capacity(1 << 20, file)),
            FileFormat::Parquet => {
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| b.with_batch_size(8192).build())
                    .map_err(|e| {
                        err(format!(
                            "{} is not a readable Parquet file: {e}",
                            path.display()
                        ))
                    })?;
                Reader::Parquet {
                    reader,
                    pending: Vec::new().into_iter(),
                }
            }
        };
        let partition = path.display().to_string();
        let skip_to = self.checkpoints.get(&partition).copied().unwrap_or(0);
        self.current = Some(OpenFile {
            partition,
            reader,
            offset: 0,
            skip_to,
        });
        Ok(true)
    }
}

fn format_of(path: &Path) -> Option<FileFormat> {
    path.extension()
        .and_then(|e| e.to_str())
        .and_then(FileFormat::parse)
}

impl OpenFile {
    /// The next record's bytes, or `None` at end of file.
    fn next_payload(&mut self, source: &str) -> Result<Option<Vec<u8>>> {
        match &mut self.reader {
            Reader::Lines(r) => {
                let mut line = Vec::new();
                let n = r
                    .read_until(b'\n', &mut line)
                    .map_err(|e| IngestError::Source {
                        source_name: source.to_string(),
                        message: format!(
                            "{}: read failed after line {}: {e}",
                            self.partition, self.offset
                        ),
                    })?;
                if n == 0 {
                    return Ok(None);
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                Ok(Some(line))
            }
            Reader::Parquet { reader, pending } => loop {
                if let Some(row) = pending.next() {
                    return Ok(Some(row));
                }
                let Some(batch) = reader.next() else {
                    return Ok(None);
                };
                let batch = batch.map_err(|e| IngestError::Source {
                    source_name: source.to_string(),
                    message: format!(
                        "{}: Parquet read failed after row {}: {e}",
                        self.partition, self.offset
                    ),
                })?;
                let mut out = Vec::new();
                {
                    let mut w = LineDelimitedWriter::new(&mut out);
                    w.write(&batch)
                        .and_then(|_| w.finish())
                        .map_err(|e| IngestError::Source {
                            source_name: source.to_string(),
                            message: format!(
                                "{}: cannot convert rows after {}: {e}",
                                self.partition, self.offset
                            ),
                        })?;
                }
                let rows: Vec<Vec<u8>> = out
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect();
                *pending = rows.into_iter();
            },
        }
    }
}

impl Source for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn seek(&mut self, checkpoints: &Checkpoints) -> Result<()> {
        self.checkpoints = checkpoints.clone();
        Ok(())
    }

    fn partitions(&self) -> Vec<String> {
        self.files.iter().map(|p| p.display().to_string()).collect()
    }

    fn notes(&self) -> Vec<String> {
        self.empty_files
            .iter()
            .map(|p| format!("{} is empty: it holds no records", p.display()))
            .collect()
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Vec<RawRecord>>> {
        let mut out = Vec::new();
        while out.len() < max_records {
            if self.current.is_none() && !self.open_next()? {
                break;
            }
            let Some(file) = self.current.as_mut() else {
                break;
            };
            match file.next_payload(&self.name)? {
                None => self.current = None,
                Some(payload) => {
                    file.offset += 1;
                    if file.offset <= file.skip_to {
                        continue;
                    }
                    out.push(RawRecord {
                        payload,
                        position: Position {
                            source: self.name.clone(),
                            partition: file.partition.clone(),
                            offset: file.offset,
                            sequence: None,
                        },
                    });
                }
            }
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }
}
