//! The `lockstep` command line.
