//! Reading Arrow columns whatever physical type the engine chose (e.g. `Utf8View`), and
//! normalising batches before they are written.

use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, BinaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema};

use crate::error::{LakeError, Result};

fn cast_to(array: &ArrayRef, to: &DataType, what: &str) -> Result<ArrayRef> {
    cast(array, to).map_err(|source| LakeError::Arrow {
        context: format!("reading column `{what}` as {to}"),
        source,
    })
}

/// The named column of `batch` as text (any string-like or castable type).
pub fn strings(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    let col = column(batch, name)?;
    let a = cast_to(col, &DataType::Utf8, name)?;
    a.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| LakeError::InvalidInput(format!("column `{name}` is not text")))
}

/// The named column of `batch` as bytes (any binary-like type, e.g. `BinaryView`).
pub fn binaries(batch: &RecordBatch, name: &str) -> Result<BinaryArray> {
    let col = column(batch, name)?;
    let a = cast_to(col, &DataType::Binary, name)?;
    a.as_any()
        .downcast_ref::<BinaryArray>()
        .cloned()
        .ok_or_else(|| LakeError::InvalidInput(format!("column `{name}` is not binary")))
}

/// The named column of `batch` as `f64` (any numeric type).
pub fn floats(batch: &RecordBatch, name: &str) -> Result<Float64Array> {
    let col = column(batch, name)?;
    let a = cast_to(col, &DataType::Float64, name)?;
    a.as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
        .ok_or_else(|| LakeError::InvalidInput(format!("column `{name}` is not numeric")))
}

/// The named column of `batch` as `i64`.
pub fn ints(batch: &RecordBatch, name: &str) -> Result<Int64Array> {
    let col = column(batch, name)?;
    let a = cast_to(col, &DataType::Int64, name)?;
    a.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| LakeError::InvalidInput(format!("column `{name}` is not an integer")))
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        let have: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        LakeError::InvalidInput(format!("no column `{name}` (columns: {})", have.join(", ")))
    })
}

/// Casts view types (`Utf8View`, `BinaryView`) to their plain forms so every table is
/// written with types any Parquet reader understands.
pub fn normalize(batch: RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| {
        matches!(
            f.data_type(),
            DataType::Utf8View | DataType::BinaryView | DataType::LargeUtf8
        )
    }) {
        return Ok(batch);
    }
    let mut fields = Vec::new();
    let mut cols = Vec::new();
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        let to = match f.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
            DataType::BinaryView => DataType::Binary,
            other => other.clone(),
        };
        cols.push(if &to == f.data_type() {
            Arc::clone(c)
        } else {
            cast_to(c, &to, f.name())?
        });
        fields.push(Field::new(f.name(), to, f.is_nullable()));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|source| LakeError::Arrow {
        context: "normalising a batch".into(),
        source,
    })
}
