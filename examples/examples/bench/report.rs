//! The one markdown table the benchmark prints, and how its figures are written.

/// A figure's target and whether it was met (`None`: not judged); `None` for figures given
/// for context.
pub struct Target(Option<(String, Option<bool>)>);

impl Target {
    pub fn none() -> Target {
        Target(None)
    }

    pub fn new(text: impl Into<String>, met: bool) -> Target {
        Target(Some((text.into(), Some(met))))
    }

    /// A target shown for comparison only: its status says so instead of ok or MISSED.
    pub fn unjudged(text: impl Into<String>) -> Target {
        Target(Some((text.into(), None)))
    }
}

#[derive(Default)]
pub struct Table {
    rows: Vec<[String; 6]>,
}

impl Table {
    pub fn row(
        &mut self,
        section: &str,
        figure: &str,
        value: String,
        ratio: String,
        target: Target,
    ) {
        let (target, status) = match target.0 {
            Some((text, Some(met))) => (text, if met { "ok" } else { "MISSED" }.to_string()),
            Some((text, None)) => (text, "not judged".to_string()),
            None => (String::new(), String::new()),
        };
        self.rows
            .push([section.into(), figure.into(), value, ratio, target, status]);
    }

    /// The table in markdown (see [`markdown`]).
    pub fn render(&self) -> String {
        let header = ["Section", "Figure", "Value", "Ratio", "Target", "Status"];
        markdown(&header, &self.rows)
    }
}

/// A markdown table, its columns padded to equal width so that it also reads well as
/// plain text.
pub fn markdown<R: AsRef<[String]>>(header: &[&str], rows: &[R]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row.as_ref()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    let mut out = line(&header) + &line(&rule);
    for row in rows {
        out += &line(row.as_ref());
    }
    out
}

/// `12,345/s`
pub fn rate(per_second: f64) -> String {
    format!("{}/s", thousands(per_second.round() as u64))
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in the unit that keeps 3 significant digits readable; may be negative.
pub fn nanos(ns: i64) -> String {
    let abs = ns.unsigned_abs() as f64;
    let sign = if ns < 0 { "-" } else { "" };
    if abs < 1e3 {
        format!("{ns} ns")
    } else if abs < 1e6 {
        format!("{sign}{:.1} µs", abs / 1e3)
    } else if abs < 1e9 {
        format!("{sign}{:.2} ms", abs / 1e6)
    } else {
        format!("{sign}{:.2} s", abs / 1e9)
    }
}

/// `0.93x`
pub fn ratio(r: f64) -> String {
    format!("{r:.3}x")
}

/// What a call is held to against its hand-written loop: the median of `rounds`, each
/// round's ratio to the loop's run in the same round, with their range and the ratio of
/// the two best rounds (`best`) beside it; just `best` when there are no rounds.
pub fn paired_ratio(rounds: &[f64], best: f64) -> (f64, String) {
    let mut sorted = rounds.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (Some(&low), Some(&high)) = (sorted.first(), sorted.last()) else {
        return (best, ratio(best));
    };
    let median = median(&sorted);
    let text = format!(
        "{} ({}-{}); best rounds {}",
        ratio(median),
        ratio(low),
        ratio(high),
        ratio(best)
    );
    (median, text)
}

/// The median of `sorted`, not empty: the mean of the two middle values when they are even
/// in number.
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n % 2 {
        1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
