//! Run reports for `lockstep report RUN`: [`html()`] renders one self-contained HTML file (inline
//! CSS, an inline SVG Gantt timeline, no script and no external resource), [`markdown()`] renders
//! text for pasting into a change ticket. Both are pure, deterministic functions of a stored
//! [`RunRecord`]: they read no clock and do no I/O, so the same run renders byte for byte the
//! same report.
//!
//! The stages are types: [`view::RunView`] derives what both formats show (step records joined
//! with their planned steps, hosts grouped by site and cluster/pool, builds before and after per
//! node, the halt step), [`gantt::Gantt`] lays out the timeline, [`html::HtmlReport`] and
//! [`markdown::MarkdownReport`] write the documents. The HTML is minijinja templates
//! (`templates/`, compiled in) over serializable data, with autoescape on: the engine escapes
//! every value through [`escape::formatter`]; the Markdown calls [`escape`]'s `md_*` functions.
//! Dates are jiff's UTC calendar ([`time`]).
//!
//! Of the workspace this crate depends on `lockstep-core` only: never on the store, the engine, WinRM or the lab
//! (the CLI loads the run and writes the file).
//!
//! Tests (`cargo test -p lockstep-report`) include a real headless-browser check: the HTML of a
//! halted two-node cluster run is screenshot by `/usr/bin/chromium` and the PNG must show
//! done- and failed-coloured bars. Without Chromium that test is skipped with a notice, unless
//! `LOCKSTEP_REQUIRE_BROWSER=1` (CI) makes it fail. `LOCKSTEP_KEEP_SCREENSHOT=FILE` keeps its PNG;
//! `LOCKSTEP_REPORT_DEMO_DIR=DIR` writes the reports and screenshots of a 2-node, a 50-host, a
//! waiting and a 1,000-host run there for a person to look at. `cargo bench -p lockstep-report`
//! times the rendering.
#![deny(missing_docs)]

use lockstep_core::RunRecord;

pub mod escape;
pub mod gantt;
pub mod html;
pub mod markdown;
pub mod time;
pub mod view;

/// The report of `run` as one self-contained HTML file.
pub fn html(run: &RunRecord) -> String {
    html::HtmlReport::new(&view::RunView::new(run)).render()
}

/// The report of `run` as Markdown, for a change ticket.
pub fn markdown(run: &RunRecord) -> String {
    markdown::MarkdownReport::new(&view::RunView::new(run)).render()
}
