//! Discovery of RAM images in physical memory (`shared/spec/loaders.md` §9, rules in §10).
