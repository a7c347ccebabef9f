//! One module per command.

pub mod approve;
pub mod check;
pub mod controller;
pub mod demo;
pub mod dry_run;
pub mod exec;
pub mod facts;
pub mod inventory;
pub mod lab;
pub mod plan;
pub mod report;
pub mod run;
pub mod status;
