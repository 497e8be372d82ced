//! The look of every figure: the bundled font (DejaVu Sans, registered with plotters'
//! ab_glyph backend so no system font is needed), colour scales, sizes, and the number
//! formats of ticks and legends (10⁵, 2×10⁵, 3.5).

use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

/// The TTF every figure is drawn with (DejaVu Sans, Bitstream Vera licence, see
/// assets/fonts/LICENSE-DejaVu.txt).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name the font is registered under; SVG files name it too, so viewers without
/// DejaVu fall back to their own sans-serif face.
pub(crate) const FONT: &str = "sans-serif";

/// Pixel sizes of the text at the figure's native size (the report shows PNGs at most at
/// that size, so these are the sizes a reader sees).
pub(crate) const TITLE_SIZE: f64 = 26.0;
pub(crate) const PANEL_TITLE_SIZE: f64 = 21.0;
pub(crate) const AXIS_LABEL_SIZE: f64 = 20.0;
pub(crate) const TICK_SIZE: f64 = 17.0;
pub(crate) const LEGEND_SIZE: f64 = 17.0;

/// Registers the bundled font once per process; the error says why it failed.
pub(crate) fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the bundled DejaVuSans.ttf is not a valid font".to_string())
        })
        .clone()
}

/// Viridis (matplotlib's perceptually uniform map) at 0.0, 0.1, ..., 1.0.
const VIRIDIS: [(u8, u8, u8); 11] = [
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
];

/// The colour of position `t` in [0, 1] on a sequential scale (viridis up to 0.85: the
/// yellow end is too pale on white).
pub(crate) fn sequential(t: f64) -> RGBColor {
    let position = t.clamp(0.0, 1.0) * 0.85 * 10.0;
    let low = (position.floor() as usize).min(9);
    let fraction = position - low as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * fraction).round() as u8;
    let (a, b) = (VIRIDIS[low], VIRIDIS[low + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// `count` colours spread over the sequential scale, in order.
pub(crate) fn sequential_steps(count: usize) -> Vec<RGBColor> {
    (0..count).map(|i| sequential(if count > 1 { i as f64 / (count - 1) as f64 } else { 0.5 })).collect()
}

/// Tableau 10: a categorical palette that stays distinct for colour-blind readers.
const CATEGORICAL: [(u8, u8, u8); 10] = [
    (78, 121, 167),
    (242, 142, 43),
    (225, 87, 89),
    (118, 183, 178),
    (89, 161, 79),
    (237, 201, 72),
    (176, 122, 161),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
];

/// The `index`-th categorical colour (cycling after 10).
pub(crate) fn categorical(index: usize) -> RGBColor {
    let (r, g, b) = CATEGORICAL[index % CATEGORICAL.len()];
    RGBColor(r, g, b)
}

pub(crate) const BLACK: RGBColor = RGBColor(20, 20, 20);
pub(crate) const GREY: RGBColor = RGBColor(130, 130, 130);
pub(crate) const RED: RGBColor = RGBColor(214, 39, 40);
pub(crate) const BLUE: RGBColor = RGBColor(31, 119, 180);
pub(crate) const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub(crate) const GREEN: RGBColor = RGBColor(44, 160, 44);
pub(crate) const PURPLE: RGBColor = RGBColor(148, 103, 189);

/// An integer as Unicode superscript digits (10⁻³, 10¹²).
pub(crate) fn superscript(value: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut text = String::new();
    if value < 0 {
        text.push('⁻');
    }
    for digit in value.unsigned_abs().to_string().bytes() {
        text.push(DIGITS[(digit - b'0') as usize]);
    }
    text
}

/// Decimal exponent and mantissa rounded to `digits` significant digits (mantissa in [1, 10)).
fn decompose(value: f64, digits: usize) -> (f64, i32) {
    let mut exponent = value.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits as i32 - 1);
    let mut mantissa = (value / 10f64.powi(exponent) * scale).round() / scale;
    if mantissa.abs() >= 10.0 {
        mantissa /= 10.0;
        exponent += 1;
    }
    (mantissa, exponent)
}

/// A mantissa without trailing zeros ("2", "2.5").
fn trim(mantissa: f64, digits: usize) -> String {
    let text = format!("{mantissa:.prec$}", prec = digits.saturating_sub(1));
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A number for a tick or legend: plain between 0.01 and 9999 ("0.5", "3.25", "200"; a whole
/// number there exactly, "4096"), otherwise "10⁵" or "2.5×10⁵"; `digits` significant digits at most.
pub(crate) fn compact(value: f64, digits: usize) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    // A count is not rounded into another count: a legend reading "4100" for a budget of 4096
    // tokens names runs that do not exist. A whole number below 10⁴ (up to the last bits of a
    // geometric mean) prints exactly; above it the power-of-ten form says it is rounded.
    let whole = value.round();
    if whole.abs() < 1e4 && (value - whole).abs() <= 1e-9 * value.abs() {
        return format!("{whole:.0}");
    }
    let (mantissa, exponent) = decompose(value, digits);
    if (-2..=3).contains(&exponent) {
        let decimals = (digits as i32 - 1 - exponent).max(0) as usize;
        let text = format!("{:.decimals$}", mantissa * 10f64.powi(exponent));
        return if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    }
    let power = format!("10{}", superscript(exponent));
    match trim(mantissa, digits).as_str() {
        "1" => power,
        "-1" => format!("-{power}"),
        m => format!("{m}×{power}"),
    }
}

/// A number for a table: 4 significant digits (trailing zeros kept, "0.3400"), as
/// "1.234×10⁶" outside [1e-3, 1e5).
pub(crate) fn table_number(value: f64) -> String {
    let size = value.abs();
    if !value.is_finite() {
        return format!("{value}");
    }
    if value == 0.0 || (1e-3..1e5).contains(&size) {
        let decimals = (3 - size.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{value:.decimals$}")
    } else {
        compact(value, 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_numbers_read_like_a_paper_axis() {
        assert_eq!(compact(1e5, 2), "10⁵");
        assert_eq!(compact(2.5e5, 2), "2.5×10⁵");
        assert_eq!(compact(2.0e-4, 2), "2×10⁻⁴");
        assert_eq!(compact(3.0, 2), "3");
        assert_eq!(compact(3.25, 3), "3.25");
        assert_eq!(compact(0.05, 2), "0.05");
        assert_eq!(compact(200.0, 2), "200");
        assert_eq!(compact(4096.0, 2), "4096", "a count is never rounded into another count");
        assert_eq!(compact(-512.0, 2), "-512");
        assert_eq!(compact(4096.0 - 1e-10, 2), "4096", "a geometric mean of 4096s");
        assert_eq!(compact(9.96e6, 2), "10⁷");
        assert_eq!(compact(1.234e12, 3), "1.23×10¹²");
    }

    #[test]
    fn table_numbers_keep_four_significant_digits() {
        assert_eq!(table_number(0.34), "0.3400");
        assert_eq!(table_number(80.0), "80.00");
        assert_eq!(table_number(1.0e22), "10²²");
        assert_eq!(table_number(2.699e10), "2.699×10¹⁰");
    }

    #[test]
    fn superscripts_cover_signs_and_several_digits() {
        assert_eq!(superscript(-12), "⁻¹²");
        assert_eq!(superscript(0), "⁰");
    }

    #[test]
    fn sequential_scale_runs_from_purple_to_green() {
        assert_eq!(sequential(0.0), RGBColor(68, 1, 84));
        let end = sequential(1.0);
        // 0.85 of viridis lies between (122,209,81) and (189,223,38).
        assert!(end.0 > 122 && end.0 < 189, "{end:?}");
        assert_eq!(sequential_steps(3).len(), 3);
    }

    #[test]
    fn the_bundled_font_registers() {
        assert_eq!(register_font(), Ok(()));
    }
}
