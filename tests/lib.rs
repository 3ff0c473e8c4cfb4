//! End-to-end tests live in this folder as `[[test]]` targets; see `tests/README.md`.
