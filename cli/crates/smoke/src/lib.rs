//! `finctl smoke-test`: suites of cases run against a running stack.

pub mod worker;
