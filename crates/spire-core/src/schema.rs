//! The canonical event schema every source maps onto.

/// One canonical event field: its name, whether intake requires it, and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventField {
    /// Column name in `events_raw` and `events`.
    pub name: &'static str,
    /// A record without this field is dead-lettered.
    pub required: bool,
    /// The logical type the value is coerced to.
    pub ty: FieldType,
}

/// Logical types of canonical fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// UTF-8 string; numbers and booleans are coerced to their text.
    Text,
    /// A point in time: RFC 3339 text, or epoch seconds / milliseconds as a number or text.
    Timestamp,
    /// A non-negative integer (milliseconds of dwell time).
    Integer,
}

/// The canonical event schema, in column order.
pub const EVENT_FIELDS: &[EventField] = &[
    EventField {
        name: "event_id",
        required: true,
        ty: FieldType::Text,
    },
    EventField {
        name: "user_id",
        required: true,
        ty: FieldType::Text,
    },
    EventField {
        name: "ts",
        required: true,
        ty: FieldType::Timestamp,
    },
    EventField {
        name: "event_type",
        required: true,
        ty: FieldType::Text,
    },
    EventField {
        name: "brand",
        required: false,
        ty: FieldType::Text,
    },
    EventField {
        name: "category",
        required: false,
        ty: FieldType::Text,
    },
    EventField {
        name: "content_id",
        required: false,
        ty: FieldType::Text,
    },
    EventField {
        name: "url",
        required: false,
        ty: FieldType::Text,
    },
    EventField {
        name: "referrer",
        required: false,
        ty: FieldType::Text,
    },
    EventField {
        name: "user_agent",
        required: false,
        ty: FieldType::Text,
    },
    EventField {
        name: "device",
        required: false,
        ty: FieldType::Text,
    },
    EventField {
        name: "country",
        required: false,
        ty: FieldType::Text,
    },
    EventField {
        name: "dwell_ms",
        required: false,
        ty: FieldType::Integer,
    },
    // When the collector received the event. Optional: defaults to the intake time. Point-in-time
    // feature snapshots use it to decide whether an event had arrived by a cut-off.
    EventField {
        name: "received_at",
        required: false,
        ty: FieldType::Timestamp,
    },
];

/// Looks up a canonical field by name.
pub fn event_field(name: &str) -> Option<&'static EventField> {
    EVENT_FIELDS.iter().find(|f| f.name == name)
}
