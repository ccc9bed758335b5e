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
    let (width, left, right, bar_h, gap) = (820.0, 190.0, 120.0, 16.0, 6.0);
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
        let (ty, title) = (y + 4.0, esc(&panel.title));
        let _ = writeln!(
            body,
            r#"<text x="10" y="{ty:.1}" {FONT} font-weight="bold">{title}</text>"#
        );
        y += 14.0;
        for b in &panel.bars {
            let w = (b.value * scale).max(1.0);
            let (end, wx, cy) = (left + w, left + b.whisker * scale, y + bar_h / 2.0);
            let (lx, ty, vx) = (left - 6.0, cy + 4.0, wx.max(end) + 6.0);
            let (label, value, colour) = (esc(&b.label), esc(&fmt(b.value)), b.role.colour());
            let _ = writeln!(
                body,
                r#"<text x="{lx:.1}" y="{ty:.1}" {FONT} text-anchor="end">{label}</text>
<rect x="{left:.1}" y="{y:.1}" width="{w:.1}" height="{bar_h:.1}" fill="{colour}"/>"#
            );
            if b.whisker > b.value {
                let (y0, y1) = (cy - 4.0, cy + 4.0);
                let _ = writeln!(
                    body,
                    r##"<line x1="{end:.1}" y1="{cy:.1}" x2="{wx:.1}" y2="{cy:.1}" stroke="#333" stroke-width="1"/><line x1="{wx:.1}" y1="{y0:.1}" x2="{wx:.1}" y2="{y1:.1}" stroke="#333" stroke-width="1"/>"##
                );
            }
            let _ = writeln!(
                body,
                r#"<text x="{vx:.1}" y="{ty:.1}" {FONT}>{value}</text>"#
            );
            y += bar_h + gap;
        }
        y += 12.0;
    }
    let mut s = header(width, y + 16.0, title, note);
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
    // Where a point of the data lands in the picture.
    let at = |(vx, vy): (f64, f64)| (left + map(x, vx, pw), top + ph - map(y, vy, ph));
    let (bottom, end) = (top + ph, left + pw);
    let mut s = header(width, height, title, note);
    for &t in &x.ticks {
        let (px, ly, label) = (at((t, 0.0)).0, bottom + 16.0, esc(&format!("{t:.0}")));
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{bottom:.1}" stroke="#ddd"/><text x="{px:.1}" y="{ly:.1}" {FONT} text-anchor="middle">{label}</text>"##
        );
    }
    for &t in &y.ticks {
        let (py, lx, label) = (at((0.0, t)).1, left - 6.0, esc(&fmt_y(t)));
        let ty = py + 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left:.1}" y1="{py:.1}" x2="{end:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{lx:.1}" y="{ty:.1}" {FONT} text-anchor="end">{label}</text>"##
        );
    }
    let (mx, my, ly) = (left + pw / 2.0, top + ph / 2.0, height - 12.0);
    let (xl, yl) = (esc(&x.label), esc(&y.label));
    let _ = writeln!(
        s,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#333"/>
<text x="{mx:.1}" y="{ly:.1}" {FONT} text-anchor="middle">{xl}</text>
<text x="16" y="{my:.1}" {FONT} text-anchor="middle" transform="rotate(-90 16 {my:.1})">{yl}</text>"##
    );
    for (i, line) in series.iter().enumerate() {
        let colour = line.role.colour();
        let dash = if line.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let pts: Vec<(f64, f64)> = line.points.iter().map(|&p| at(p)).collect();
        let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let path = path.join(" ");
        let _ = writeln!(
            s,
            r#"<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#
        );
        for (cx, cy) in pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3" fill="{colour}"/>"#
            );
        }
        let (lx, ly) = (end + 14.0, top + 10.0 + 20.0 * i as f64);
        let (lx2, tx, ty, name) = (lx + 24.0, lx + 30.0, ly + 4.0, esc(&line.name));
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{lx2:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"{dash}/><text x="{tx:.1}" y="{ty:.1}" {FONT}>{name}</text>"#
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
