//! Loads and validates Lockstep's YAML inputs into `lockstep-core` types.
#![deny(missing_docs)]

mod diag;
mod tree;

pub use diag::{Diagnostic, Diagnostics, SourceFile};
