//! Renders the HTML report in a real headless browser (Debian's Chromium) and checks the
//! screenshot: not blank, and the bar colours of done and failed steps are on it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lockstep_core::StepState;
use lockstep_report::gantt::state_colour;

use crate::fixture;

const CHROMIUM: &str = "/usr/bin/chromium";

fn rgb(hex: &str) -> [u8; 3] {
    let p = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
    [p(1), p(3), p(5)]
}

/// Decodes an RGB(A) PNG into its RGB pixels and width.
fn pixels(png_file: &Path) -> (Vec<[u8; 3]>, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(png_file).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let px = buf[..info.buffer_size()]
        .chunks(step)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (px, info.width)
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= 6)
}

/// The longest horizontal run of pixels near colour `c`.
fn longest_run(px: &[[u8; 3]], width: u32, c: [u8; 3]) -> usize {
    px.chunks(width as usize)
        .map(|row| {
            let (mut best, mut cur) = (0, 0);
            for &p in row {
                cur = if near(p, c) { cur + 1 } else { 0 };
                best = best.max(cur);
            }
            best
        })
        .max()
        .unwrap_or(0)
}

/// Screenshots `html` at 1400×1000 into `dir/out.png`.
pub fn screenshot(html: &str, dir: &Path) -> std::path::PathBuf {
    let page = dir.join("report.html");
    std::fs::write(&page, html).unwrap();
    let out = dir.join("out.png");
    let profile = dir.join("profile");
    let log = dir.join("chromium.log");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg("--window-size=1400,1000")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        // A file, not a pipe: a chatty browser cannot fill it and stall.
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start chromium");
    // Bounded: a browser that hangs fails the test instead of the whole run.
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success() && out.exists(),
        "chromium failed: {status}\n{stderr}"
    );
    out
}

#[test]
#[allow(clippy::print_stderr)]
fn chromium_renders_the_timeline() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var("LOCKSTEP_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("{CHROMIUM} is missing and LOCKSTEP_REQUIRE_BROWSER=1");
        }
        eprintln!(
            "skipped: {CHROMIUM} is not installed (set LOCKSTEP_REQUIRE_BROWSER=1 to fail instead)"
        );
        return;
    }
    let run = fixture::halted_two_node();
    let dir = tempfile::tempdir().unwrap();
    let png_file = screenshot(&lockstep_report::html(&run), dir.path());
    if let Ok(keep) = std::env::var("LOCKSTEP_KEEP_SCREENSHOT") {
        std::fs::copy(&png_file, keep).unwrap();
    }
    let (px, width) = pixels(&png_file);
    assert_eq!(width, 1400);
    assert_eq!(px.len(), 1400 * 1000);

    // Not blank: many colours, and no single colour covers (nearly) everything.
    let mut distinct: Vec<[u8; 3]> = px.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 50, "only {} colours", distinct.len());
    let background = px.iter().filter(|&&p| p == px[0]).count();
    assert!(
        background < px.len() * 95 / 100,
        "{background} of {} pixels are the corner colour",
        px.len()
    );

    // The done and failed bars are drawn in their colours. A bar is a long horizontal run of
    // one colour: the legend dots (10 px) and the status badge (~80 px) are far shorter, the
    // SP install bars of this run span hundreds of pixels.
    for state in [StepState::Done, StepState::Failed] {
        let c = rgb(state_colour(state));
        let run = longest_run(&px, width, c);
        assert!(run >= 150, "{state:?} colour {c:?}: longest run {run} px");
    }
}

/// With `LOCKSTEP_REPORT_DEMO_DIR` set (and Chromium present), writes the reports and
/// screenshots of a 2-node run, a 50-host fleet and a 1,000-host fleet there, for a person to
/// look at. Does nothing otherwise.
#[test]
fn demo_screenshots_on_request() {
    let Ok(dir) = std::env::var("LOCKSTEP_REPORT_DEMO_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let fleet_run = |n, per| {
        fixture::simulate(
            fixture::plan(&fixture::fleet(n, per), &["canary", "wave-1"]),
            |id| {
                if id == "SEACL3-N2/install-sp" {
                    fixture::Outcome::WrongBuild
                } else {
                    fixture::Outcome::Ok
                }
            },
            None,
        )
    };
    let waiting = fixture::simulate(
        fixture::plan(&fixture::fleet(4, 3), &["canary", "wave-1"]),
        |id| {
            if id == "MILCL2/EVS2/upgrade-evs" {
                fixture::Outcome::Wait
            } else {
                fixture::Outcome::Ok
            }
        },
        None,
    );
    let thousand = fixture::simulate(
        fixture::plan(&fixture::fleet(250, 4), &["canary", "wave-1"]),
        |_| fixture::Outcome::Ok,
        None,
    );
    for (name, run) in [
        ("two-node", fixture::halted_two_node()),
        ("fifty", fleet_run(25, 2)),
        ("waiting", waiting),
        ("thousand", thousand),
    ] {
        let html = lockstep_report::html(&run);
        std::fs::write(dir.join(format!("{name}.html")), &html).unwrap();
        std::fs::write(
            dir.join(format!("{name}.md")),
            lockstep_report::markdown(&run),
        )
        .unwrap();
        if Path::new(CHROMIUM).exists() {
            let tmp = tempfile::tempdir().unwrap();
            let png = screenshot(&html, tmp.path());
            std::fs::copy(png, dir.join(format!("{name}.png"))).unwrap();
        }
    }
}
