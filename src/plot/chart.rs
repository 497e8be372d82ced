//! A figure as data, before any drawing: panels with named axes (linear or log), layers of
//! lines, markers and bands with their legend labels. The figure builders produce these;
//! `render` draws them to SVG and PNG. Keeping the description separate lets tests check a
//! figure's content (series, legend entries, ranges) without reading pixels.

use plotters::style::RGBColor;

use crate::plot::style::compact;

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    Linear,
    Log,
}

/// One axis: its name with units, its scale, and an optional fixed range.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axis {
    pub label: String,
    pub scale: Scale,
    /// (low, high) in data units; None: fitted to the data with a margin.
    pub range: Option<(f64, f64)>,
}

impl Axis {
    pub fn log(label: &str) -> Axis {
        Axis { label: label.to_string(), scale: Scale::Log, range: None }
    }

    pub fn linear(label: &str) -> Axis {
        Axis { label: label.to_string(), scale: Scale::Linear, range: None }
    }

    /// Whether `value` can be drawn on this axis.
    pub fn accepts(&self, value: f64) -> bool {
        value.is_finite() && (self.scale == Scale::Linear || value > 0.0)
    }

    /// Data value to drawing coordinate (log10 on log axes).
    pub fn to_coord(&self, value: f64) -> f64 {
        match self.scale {
            Scale::Linear => value,
            Scale::Log => value.log10(),
        }
    }

    /// Drawing coordinate back to the data value.
    pub fn value_at(&self, coord: f64) -> f64 {
        match self.scale {
            Scale::Linear => coord,
            Scale::Log => 10f64.powf(coord),
        }
    }
}

/// Marker shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
    Cross,
}

/// What a layer draws.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LayerKind {
    /// A polyline through the points; `dashed` for fits and references.
    Line { width: u32, dashed: bool },
    /// One marker per point; `filled` false draws outlines.
    Markers { shape: Marker, size: u32, filled: bool },
    /// A filled band between `points` (lower edge) and `upper` (same x values).
    Band { upper: Vec<(f64, f64)> },
    /// Vertical error bars: `points` are the centres, `bounds` the (low, high) of each.
    ErrorBars { bounds: Vec<(f64, f64)> },
}

/// One drawn series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layer {
    /// Legend text; layers sharing a label share one legend entry.
    pub label: Option<String>,
    pub color: RGBColor,
    pub kind: LayerKind,
    pub points: Vec<(f64, f64)>,
}

impl Layer {
    pub fn line(label: Option<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Layer {
        Layer { label, color, kind: LayerKind::Line { width: 2, dashed: false }, points }
    }

    pub fn dashed(label: Option<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Layer {
        Layer { label, color, kind: LayerKind::Line { width: 2, dashed: true }, points }
    }

    pub fn markers(label: Option<String>, color: RGBColor, shape: Marker, points: Vec<(f64, f64)>) -> Layer {
        Layer { label, color, kind: LayerKind::Markers { shape, size: 5, filled: true }, points }
    }

    /// Sets a line's stroke width, or a marker's size, in pixels.
    pub fn with_width(mut self, new_width: u32) -> Layer {
        if let LayerKind::Line { width, .. } = &mut self.kind {
            *width = new_width;
        }
        if let LayerKind::Markers { size, .. } = &mut self.kind {
            *size = new_width;
        }
        self
    }

    pub fn hollow(mut self) -> Layer {
        if let LayerKind::Markers { filled, .. } = &mut self.kind {
            *filled = false;
        }
        self
    }
}

/// One plotting area.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Panel {
    /// Shown above the panel when a figure has several.
    pub title: Option<String>,
    pub x: Axis,
    pub y: Axis,
    pub layers: Vec<Layer>,
}

impl Panel {
    pub fn new(x: Axis, y: Axis) -> Panel {
        Panel { title: None, x, y, layers: Vec::new() }
    }

    /// The data range of the panel along x (`pick_x`) or y, padded, in drawing coordinates.
    pub fn coord_range(&self, along_x: bool) -> (f64, f64) {
        let axis = if along_x { &self.x } else { &self.y };
        let values = self.layers.iter().flat_map(|layer| layer_values(layer, along_x)).filter(|v| axis.accepts(*v));
        let (low, high) = match axis.range {
            Some(range) => range,
            None => values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v))),
        };
        if !(low.is_finite() && high.is_finite()) {
            return (0.0, 1.0);
        }
        let (low, high) = (axis.to_coord(low), axis.to_coord(high));
        let span = high - low;
        let pad = if axis.range.is_some() {
            0.0
        } else if span > 0.0 {
            0.05 * span
        } else {
            0.05 * low.abs().max(1.0)
        };
        (low - pad, high + pad)
    }
}

/// Every x (or y) value a layer draws, band edges and error-bar ends included.
fn layer_values(layer: &Layer, along_x: bool) -> Vec<f64> {
    let pick = |p: &(f64, f64)| if along_x { p.0 } else { p.1 };
    let mut values: Vec<f64> = layer.points.iter().map(pick).collect();
    match &layer.kind {
        LayerKind::Band { upper } => values.extend(upper.iter().map(pick)),
        LayerKind::ErrorBars { bounds } if !along_x => values.extend(bounds.iter().flat_map(|b| [b.0, b.1])),
        _ => {}
    }
    values
}

/// A whole figure: a file name (without extension), a title and panels side by side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FigureSpec {
    pub name: String,
    pub title: String,
    pub panels: Vec<Panel>,
}

impl FigureSpec {
    /// The legend entries in first-appearance order: (label, colour, kind of the first
    /// layer with that label).
    pub fn legend(&self) -> Vec<(String, RGBColor, LayerKind)> {
        let mut entries: Vec<(String, RGBColor, LayerKind)> = Vec::new();
        for layer in self.panels.iter().flat_map(|panel| &panel.layers) {
            if let Some(label) = &layer.label {
                if !entries.iter().any(|(existing, _, _)| existing == label) {
                    entries.push((label.clone(), layer.color, layer.kind.clone()));
                }
            }
        }
        entries
    }
}

/// Major and minor ticks (data values) of a log axis over [low, high] (data values). Bounded
/// for any input: the range is clipped to the positive finite doubles (a padded range past
/// 1e308 is infinite), so at most ~630 decades are ever walked, and an empty or inverted range
/// has no ticks.
pub(crate) fn log_ticks(low: f64, high: f64) -> (Vec<f64>, Vec<f64>) {
    // f64::max and f64::min return the other operand for a NaN, so both ends are numbers here.
    let (low, high) = (low.max(f64::MIN_POSITIVE), high.min(f64::MAX));
    if low > high {
        return (Vec::new(), Vec::new());
    }
    let (first, last) = (low.log10().ceil() as i32, high.log10().floor() as i32);
    let decades = last - first + 1;
    if decades == 2 {
        // Two powers of ten inside: label 1, 2 and 5 of each decade.
        return (multiples(low, high, &[1.0, 2.0, 5.0]), multiples(low, high, &[3.0, 4.0, 6.0, 7.0, 8.0, 9.0]));
    }
    if decades > 2 {
        let stride = (decades as usize).div_ceil(8).max(1) as i32;
        let major: Vec<f64> = (first..=last).filter(|k| (k - first) % stride == 0).map(|k| 10f64.powi(k)).collect();
        let minor = multiples(low, high, &[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let minor = if stride == 1 { minor } else { Vec::new() };
        return (major, minor);
    }
    // A narrow range (loss axes): round linear steps read best.
    if high / low < 4.0 {
        return (linear_ticks(low, high), Vec::new());
    }
    // Under two decades: mantissa sets from coarse to fine, the first giving 4+ ticks.
    let sets: [&[f64]; 3] =
        [&[1.0, 2.0, 5.0], &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0], &[1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0]];
    for set in sets {
        let ticks = multiples(low, high, set);
        if ticks.len() >= 4 {
            return (ticks, Vec::new());
        }
    }
    (linear_ticks(low, high), Vec::new())
}

/// m × 10^k within [low, high] for the mantissas m; k stays within the exponents of finite
/// doubles whatever the range.
fn multiples(low: f64, high: f64, mantissas: &[f64]) -> Vec<f64> {
    let mut ticks = Vec::new();
    let (low, high) = (low.max(f64::MIN_POSITIVE), high.min(f64::MAX));
    let exponent = |v: f64| v.log10().clamp(-400.0, 400.0) as i32;
    for k in (exponent(low).saturating_sub(1).max(-330))..=(exponent(high).saturating_add(1).min(309)) {
        for m in mantissas {
            // Rounded so that 3 × 10^-1 prints as 0.3.
            let value = (m * 10f64.powi(k) * 1e12).round() / 1e12;
            let value = if k < -12 { m * 10f64.powi(k) } else { value };
            if value >= low * (1.0 - 1e-9) && value <= high * (1.0 + 1e-9) {
                ticks.push(value);
            }
        }
    }
    ticks
}

/// Evenly spaced round ticks over [low, high]: the largest step of 1, 2, 2.5 or 5 × 10^k
/// that still gives 4 to 9 ticks.
pub(crate) fn linear_ticks(low: f64, high: f64) -> Vec<f64> {
    let span = high - low;
    if !(span > 0.0 && span.is_finite()) {
        return if low.is_finite() { vec![low] } else { Vec::new() };
    }
    // A span so small next to its values that steps vanish in rounding: the two ends.
    if span < (low.abs().max(high.abs())) * 1e-12 {
        return vec![low, high];
    }
    let magnitude = 10f64.powf((span / 6.0).log10().floor());
    let steps = [10.0, 5.0, 2.5, 2.0, 1.0, 0.5].map(|f| f * magnitude);
    let count = |step: f64| ((high / step).floor() - (low / step).ceil()) as i64 + 1;
    let step = steps.iter().copied().find(|s| (4..=9).contains(&count(*s))).unwrap_or(steps[4]);
    let (start, end) = ((low / step).ceil() as i64, (high / step).floor() as i64);
    (start..=end).map(|i| ((i as f64 * step) / magnitude * 1e6).round() / 1e6 * magnitude).collect()
}

/// Tick label text: enough significant digits to tell neighbouring ticks apart.
pub(crate) fn tick_label(value: f64, ticks: &[f64]) -> String {
    for digits in 1..=4 {
        let labels: Vec<String> = ticks.iter().map(|t| compact(*t, digits)).collect();
        let distinct = labels.windows(2).all(|pair| pair[0] != pair[1]);
        if distinct {
            return compact(value, digits);
        }
    }
    compact(value, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_over_several_decades_are_powers_of_ten() {
        let (major, minor) = log_ticks(3e4, 2e7);
        assert_eq!(major, vec![1e5, 1e6, 1e7]);
        assert!(minor.contains(&4e4) && minor.contains(&2e7) && !minor.contains(&3e7));
    }

    #[test]
    fn log_ticks_over_about_two_decades_label_1_2_5() {
        let (major, minor) = log_ticks(8e4, 8e6);
        assert_eq!(major, vec![1e5, 2e5, 5e5, 1e6, 2e6, 5e6]);
        assert_eq!(minor.len(), 13, "8e4, 9e4, then 3, 4, 6, 7, 8, 9 × 10⁵ and 3, 4, 6, 7, 8 × 10⁶");
    }

    #[test]
    fn log_ticks_over_a_narrow_loss_range_are_round_numbers() {
        let (major, _) = log_ticks(2.6, 4.7);
        assert_eq!(major, vec![3.0, 3.5, 4.0, 4.5]);
        let (major, _) = log_ticks(2.0, 12.0);
        assert_eq!(major, vec![2.0, 3.0, 5.0, 7.0, 10.0]);
    }

    #[test]
    fn axes_over_huge_or_degenerate_ranges_are_bounded() {
        // A loss of 1e300 padded by 5% of its decades runs past f64::MAX.
        for (low, high) in
            [(3.0, f64::INFINITY), (3.0, 1e300), (1e-300, 1e300), (0.0, 5.0), (5.0, 1.0), (f64::NAN, 2.0)]
        {
            let (major, minor) = log_ticks(low, high);
            assert!(major.len() + minor.len() < 10_000, "{low}..{high}: {} ticks", major.len() + minor.len());
            assert!(major.iter().chain(&minor).all(|t| t.is_finite() && *t > 0.0), "{low}..{high}");
        }
        let (major, _) = log_ticks(3.0, f64::INFINITY);
        // 308 decades from 10 up, labelled every 39th: 8 labels, the last near 1e274.
        assert_eq!((major.len(), major.first()), (8, Some(&10.0)), "{major:?}");
        assert!((major[7] / 1e274 - 1.0).abs() < 1e-12, "{major:?}");
        assert!(log_ticks(5.0, 1.0).0.is_empty());
        assert_eq!(linear_ticks(-1e308, 1e308), vec![-1e308], "an infinite span");
        assert_eq!(linear_ticks(1e300, 1e300 * (1.0 + 1e-15)).len(), 2);
        assert!(linear_ticks(f64::NAN, 1.0).is_empty());
        let huge = linear_ticks(0.0, 1e300);
        assert!((4..=9).contains(&huge.len()) && huge.iter().all(|t| t.is_finite()), "{huge:?}");
    }

    #[test]
    fn linear_ticks_are_round() {
        assert_eq!(linear_ticks(-0.031, 0.042), vec![-0.02, 0.0, 0.02, 0.04]);
        assert_eq!(linear_ticks(2.7, 8.9), vec![3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(linear_ticks(2.1, 4.9), vec![2.5, 3.0, 3.5, 4.0, 4.5]);
    }

    #[test]
    fn tick_labels_get_the_digits_to_differ() {
        let ticks = [3.0, 3.5, 4.0];
        assert_eq!(tick_label(3.5, &ticks), "3.5");
        assert_eq!(tick_label(4.0, &ticks), "4");
    }

    #[test]
    fn legend_merges_layers_with_the_same_label() {
        let mut panel = Panel::new(Axis::log("x"), Axis::log("y"));
        let red = crate::plot::style::RED;
        panel.layers.push(Layer::line(Some("a".into()), red, vec![(1.0, 1.0)]));
        panel.layers.push(Layer::line(Some("a".into()), red, vec![(2.0, 2.0)]));
        panel.layers.push(Layer::line(None, red, vec![(3.0, 3.0)]));
        panel.layers.push(Layer::dashed(Some("b".into()), red, vec![(4.0, 4.0)]));
        let figure = FigureSpec { name: "f".into(), title: "t".into(), panels: vec![panel.clone()] };
        let labels: Vec<String> = figure.legend().into_iter().map(|e| e.0).collect();
        assert_eq!(labels, vec!["a", "b"]);
        let (low, high) = panel.coord_range(true);
        assert!((low - (0.0 - 0.05 * 4f64.log10())).abs() < 1e-12 && high > 4f64.log10());
    }
}
