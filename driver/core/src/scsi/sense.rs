//! The one sense-data builder (fixed format, SPC-4 §4.5.3).
