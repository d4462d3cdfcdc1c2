//! Synthetic physical-memory images with planted loader structures, for tests
