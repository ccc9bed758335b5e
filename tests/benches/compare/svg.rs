//! Just enough SVG for the report: horizontal bar charts (median with a
//! p99 whisker) and line charts with optional log axes. No dependencies;
//! the output is plain, diffable text.

use std::fmt::Write as _;

/// Colours by role, so that ours, the original and the peers read apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// fsatomic's protocols.
    Ours,
    /// The original Go package's protocol.
    Original,
    /// Crates users would pick instead.
    Peer,
    /// Embedded databases users would pick instead (SQLite, redb).
    Database,
    /// The physical floor (raw append + fdatasync).
    Floor,
}

impl Role {
    fn colour(self) -> &'static str {
        match self {
            Role::Ours => "#2e7d32",
            Role::Original => "#c62828",
            Role::Peer => "#757575",
            Role::Database => "#6a1b9a",
            Role::Floor => "#1565c0",
        }
    }
}

/// One bar: a median and a p99 whisker.
pub struct Bar {
    /// Label on the left.
    pub label: String,
    /// Bar length (median).
    pub value: f64,
    /// Whisker end (p99).
    pub whisker: f64,
    /// Colour role.
    pub role: Role,
}

/// One panel of bars sharing a scale.
pub struct Panel {
    /// Panel title.
    pub title: String,
    /// The bars, top to bottom.
    pub bars: Vec<Bar>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const FONT: &str = r#"font-family="sans-serif" font-size="12""#;

/// The opening of a `width` × `height` plot: white ground, title, note.
fn header(width: f64, height: f64, title: &str, note: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}">
<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-family="sans-serif" font-size="15" font-weight="bold">{}</text><text x="10" y="36" {FONT} fill="#555">{}</text>
"##,
        esc(title),
        esc(note)
    )
}

/// Horizontal bars, one panel per size, values formatted by `fmt`.
pub fn bars(title: &str, note: &str, panels: &[Panel], fmt: impl Fn(f64) -> String) -> String {
    let width = 820.0;
    let left = 190.0;
    let right = 120.0;
    let bar_h = 16.0;
    let gap = 6.0;
    let mut y = 44.0;
    let mut body = String::new();
    for panel in panels {
        let max = panel
            .bars
            .iter()
            .map(|b| b.whisker.max(b.value))
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        let scale = (width - left - right) / max;
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.1}" {FONT} font-weight="bold">{}</text>"#,
            y + 4.0,
            esc(&panel.title)
        );
        y += 14.0;
        for b in &panel.bars {
            let w = (b.value * scale).max(1.0);
            let wx = left + b.whisker * scale;
            let cy = y + bar_h / 2.0;
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" {FONT} text-anchor="end">{}</text>"#,
                left - 6.0,
                cy + 4.0,
                esc(&b.label)
            );
            let _ = writeln!(
                body,
                r#"<rect x="{left:.1}" y="{y:.1}" width="{w:.1}" height="{bar_h:.1}" fill="{}"/>"#,
                b.role.colour()
            );
            if b.whisker > b.value {
                let _ = writeln!(
                    body,
                    r##"<line x1="{:.1}" y1="{cy:.1}" x2="{wx:.1}" y2="{cy:.1}" stroke="#333" stroke-width="1"/><line x1="{wx:.1}" y1="{:.1}" x2="{wx:.1}" y2="{:.1}" stroke="#333" stroke-width="1"/>"##,
                    left + w,
                    cy - 4.0,
                    cy + 4.0
                );
            }
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" {FONT}>{}</text>"#,
                wx.max(left + w) + 6.0,
                cy + 4.0,
                esc(&fmt(b.value))
            );
            y += bar_h + gap;
        }
        y += 12.0;
    }
    let height = y + 16.0;
    let mut s = header(width, height, title, note);
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}

/// One line of a line chart.
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// (x, y) points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Colour role.
    pub role: Role,
    /// Dashed line.
    pub dashed: bool,
}

/// An axis: label, log or linear, and tick positions.
pub struct Axis {
    /// Axis label.
    pub label: String,
    /// Logarithmic scale.
    pub log: bool,
    /// Ticks (also fix the range: first and last are the ends).
    pub ticks: Vec<f64>,
}

/// A line chart; x ticks are whole numbers, y tick labels formatted by
/// `fmt_y`.
pub fn lines(
    title: &str,
    note: &str,
    x: &Axis,
    y: &Axis,
    series: &[Series],
    fmt_y: impl Fn(f64) -> String,
) -> String {
    let (width, height) = (820.0, 440.0);
    let (left, right, top, bottom) = (80.0, 220.0, 50.0, 50.0);
    let pw = width - left - right;
    let ph = height - top - bottom;
    let map = |axis: &Axis, v: f64, len: f64| -> f64 {
        let lo = *axis.ticks.first().unwrap_or(&0.0);
        let hi = *axis.ticks.last().unwrap_or(&1.0);
        let t = if axis.log {
            (v.max(f64::MIN_POSITIVE).ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - lo) / (hi - lo)
        };
        t.clamp(-0.05, 1.05) * len
    };
    let mut s = header(width, height, title, note);
    for &t in &x.ticks {
        let px = left + map(x, t, pw);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" {FONT} text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 16.0,
            esc(&format!("{t:.0}"))
        );
    }
    for &t in &y.ticks {
        let py = top + ph - map(y, t, ph);
        let _ = writeln!(
            s,
            r##"<line x1="{left:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" {FONT} text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            py + 4.0,
            esc(&fmt_y(t))
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" {FONT} text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        height - 12.0,
        esc(&x.label)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" {FONT} text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
        top + ph / 2.0,
        top + ph / 2.0,
        esc(&y.label)
    );
    for (i, line) in series.iter().enumerate() {
        let colour = line.role.colour();
        let dash = if line.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let pts: Vec<String> = line
            .points
            .iter()
            .map(|&(px, py)| {
                format!(
                    "{:.1},{:.1}",
                    left + map(x, px, pw),
                    top + ph - map(y, py, ph)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
            pts.join(" ")
        );
        for &(px, py) in &line.points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                left + map(x, px, pw),
                top + ph - map(y, py, ph)
            );
        }
        let ly = top + 10.0 + 20.0 * i as f64;
        let lx = left + pw + 14.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" {FONT}>{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            esc(&line.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The smallest and the largest y of `series` (the largest at least 0).
pub fn y_range(series: &[Series]) -> (f64, f64) {
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    (
        ys.clone().fold(f64::INFINITY, f64::min),
        ys.fold(0.0, f64::max),
    )
}

/// Log-scale ticks 1, 2, 5 × 10^k, from the last at or below `lo` to the
/// first at or above `hi`.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut all: Vec<f64> = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-12).log10().floor());
    while all.last().is_none_or(|&t| t < hi) {
        for m in [1.0, 2.0, 5.0] {
            all.push(decade * m);
        }
        decade *= 10.0;
    }
    let start = all.iter().rposition(|&t| t <= lo).unwrap_or(0);
    let end = all.iter().position(|&t| t >= hi).unwrap_or(all.len() - 1);
    all[start..=end].to_vec()
}

/// Linear ticks 0 ..= a round number above `hi`, about five of them.
pub fn linear_ticks(hi: f64) -> Vec<f64> {
    let raw = hi.max(f64::MIN_POSITIVE) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|&st| st >= raw)
        .unwrap_or(10.0 * mag);
    let n = (hi / step).ceil() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}
