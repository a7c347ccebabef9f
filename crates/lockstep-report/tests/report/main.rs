//! Tests of the HTML and Markdown reports over hand-built runs.

mod browser;
mod fixture;
mod html;
mod markdown;
mod view;
