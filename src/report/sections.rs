//! The report's sections, built from the records, fit.json and the figures: the headline
//! numbers (`headline`), the sweep's plan in short, the figures, the fit tables with their 95% intervals,
//! a and b from every approach beside the published values, the compute-optimal
//! recommendation, the holdout error, the counting conventions, and what was skipped.

use crate::counting::{FlopConvention, ParamCount};
use crate::plot::fitjson::{law_name, FitJson, Prediction};
use crate::plot::records::{positive, Counting, Sweep};
use crate::plot::style::{compact, table_number};
use crate::plot::PlotOutput;
use crate::records::verdict::{Assessment, Verdict};
use crate::report::document::Block;

pub(crate) mod headline;
pub(crate) use headline::headline;

/// Published compute-optimal exponents (a, b): Kaplan et al. 2020 (section 6.1, N_opt ∝
/// C^0.73) and Hoffmann et al. 2022, Table 2 (approaches 1, 2, 3).
const PUBLISHED: [(&str, f64, f64); 4] = [
    ("Kaplan et al. 2020", 0.73, 0.27),
    ("Hoffmann et al. 2022, approach 1", 0.50, 0.50),
    ("Hoffmann et al. 2022, approach 2", 0.49, 0.51),
    ("Hoffmann et al. 2022, approach 3", 0.46, 0.54),
];

/// "[low, high]" or empty.
fn interval(value: Option<(f64, f64)>) -> String {
    value.map(|(low, high)| format!("[{}, {}]", table_number(low), table_number(high))).unwrap_or_default()
}

/// A count or budget: three significant digits, powers of ten when large.
fn count(value: f64) -> String {
    compact(value, 3)
}

/// (smallest, largest) of the values, if any.
fn span(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |range, v| match range {
        None => Some((v, v)),
        Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
    })
}

/// The sweep's plan in short: runs by status, model sizes, budgets, ranges, data, device.
pub(crate) fn plan(sweep: &Sweep, counting: &Counting) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(2, "The sweep".into())];
    let mut statuses: Vec<(String, usize)> = Vec::new();
    for run in &sweep.runs {
        let status = run.row.status.as_str();
        match statuses.iter_mut().find(|(s, _)| *s == status) {
            Some(entry) => entry.1 += 1,
            None => statuses.push((status.to_string(), 1)),
        }
    }
    let status_text: Vec<String> = statuses.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let mut items = vec![format!("{}: {}", crate::human::plural(sweep.runs.len(), "run"), status_text.join(", "))];
    items.extend(budget_line(sweep));
    let done = sweep.done_runs(counting);
    let ranges = [
        ("N", span(done.iter().map(|(_, p)| p.params))),
        ("D", span(done.iter().map(|(_, p)| p.tokens))),
        ("C", span(done.iter().map(|(_, p)| p.flops))),
    ];
    for (name, range) in ranges {
        if let Some((low, high)) = range {
            let decades = crate::fit::decades(low, high);
            items.push(format!("{name} from {} to {} ({decades:.1} decades)", count(low), count(high)));
        }
    }
    let total_compute: f64 = done.iter().map(|(_, p)| p.flops).sum();
    let wall: f64 = done.iter().filter_map(|(r, _)| r.row.wall_s).sum();
    items.push(format!("total compute {} FLOPs, {} of training", count(total_compute), crate::human::duration(wall)));
    items.extend(distinct_line("data source", done.iter().filter_map(|(r, _)| r.info.data_source.clone())));
    items.extend(distinct_line("device", done.iter().filter_map(|(r, _)| r.info.device.clone())));
    items.extend(distinct_line("ops", done.iter().filter_map(|(r, _)| r.info.ops.clone())));
    items.extend(distinct_line("seed", sweep.runs.iter().filter_map(|r| r.row.seed.map(|s| format!("{s}")))));
    blocks.push(Block::List(items));
    blocks.push(sizes_table(sweep, counting));
    if let Some(config) = &sweep.config {
        blocks.push(Block::Code { caption: "sweep.toml, the config as run".into(), text: config.clone() });
    }
    blocks
}

/// "<what>: a, b, c" of the distinct values, if any.
fn distinct_line(what: &str, values: impl Iterator<Item = String>) -> Option<String> {
    let mut distinct: Vec<String> = Vec::new();
    for value in values {
        if !distinct.contains(&value) {
            distinct.push(value);
        }
    }
    (!distinct.is_empty()).then(|| format!("{what}: {}", distinct.join(", ")))
}

/// The FLOP budgets (IsoFLOP sweeps) or token budgets of the runs.
fn budget_line(sweep: &Sweep) -> Option<String> {
    let mut flops: Vec<f64> = sweep.runs.iter().filter_map(|r| r.info.flop_budget).collect();
    let (what, mut values) = if flops.is_empty() {
        ("token budgets", sweep.runs.iter().filter_map(|r| positive(r.row.tokens)).collect::<Vec<f64>>())
    } else {
        flops.sort_by(f64::total_cmp);
        ("FLOP budgets", flops)
    };
    values.sort_by(f64::total_cmp);
    values.dedup();
    if values.is_empty() {
        return None;
    }
    if values.len() > 12 {
        return Some(format!(
            "{} {what} from {} to {}",
            values.len(),
            count(values[0]),
            count(values[values.len() - 1])
        ));
    }
    Some(format!("{what}: {}", values.iter().map(|v| count(*v)).collect::<Vec<_>>().join(", ")))
}

/// One row per model shape: layers, width, heads, N, and the runs of that shape.
fn sizes_table(sweep: &Sweep, counting: &Counting) -> Block {
    let mut rows: Vec<(Vec<String>, usize, usize)> = Vec::new();
    for run in &sweep.runs {
        let cell = |value: Option<f64>| positive(value).map(|v| format!("{v}")).unwrap_or_default();
        let n = positive(run.row.params(counting.params)).map(count).unwrap_or_default();
        let key = vec![cell(run.row.n_layers), cell(run.row.d_model), cell(run.row.n_heads), n];
        let done = usize::from(run.is_done());
        match rows.iter_mut().find(|(k, _, _)| *k == key) {
            Some(row) => {
                row.1 += 1;
                row.2 += done;
            }
            None => rows.push((key, 1, done)),
        }
    }
    let header = ["n_layers", "d_model", "n_heads", "N", "runs", "done"].map(String::from).to_vec();
    let rows = rows
        .into_iter()
        .map(|(mut key, runs, done)| {
            key.push(runs.to_string());
            key.push(done.to_string());
            key
        })
        .collect();
    Block::Table { header, rows }
}

/// The figures, each inlined (HTML) or linked (Markdown), and those skipped with why.
pub(crate) fn figures(output: &PlotOutput) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(2, "Figures".into())];
    for figure in &output.figures {
        blocks.push(Block::Figure {
            title: figure.title.clone(),
            png: figure.png.clone(),
            png_link: format!("figures/{}.png", figure.name),
            svg_link: format!("figures/{}.svg", figure.name),
        });
    }
    if !output.skipped.is_empty() {
        blocks.push(Block::Paragraph("Figures the data cannot support:".into()));
        blocks.push(Block::List(output.skipped.iter().map(|s| format!("`{}`: {}", s.name, s.reason)).collect()));
    }
    blocks
}

/// Rows "parameter | value | 95% interval" of one law's params object, then the values of
/// its form with an irreducible term E (Kaplan laws) when fitted.
fn parameter_rows(fit: &FitJson, law: &str) -> Vec<Vec<String>> {
    let Some((params, irreducible)) = fit.parameters(law) else { return Vec::new() };
    let mut rows: Vec<Vec<String>> = params
        .iter()
        .map(|(name, value)| vec![name.clone(), table_number(*value), interval(fit.interval(law, name))])
        .collect();
    for (name, value) in irreducible.iter().flatten() {
        rows.push(vec![format!("{name} (form with E)"), table_number(*value), "point estimate, not judged".into()]);
    }
    rows
}

/// The laws' parameter tables with their 95% bootstrap intervals.
pub(crate) fn fit_tables(fit: &FitJson) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(2, "Fitted laws".into())];
    let header = ["parameter", "value", "95% interval"].map(String::from).to_vec();
    let laws = [
        ("chinchilla", "Approach 3 (Hoffmann et al. 2022, eq. 2): L = E + A/N^α + B/D^β, Huber loss on log L"),
        ("kaplan_n", "Kaplan et al. 2020 eq. 1.1: L(N) = (N_c/N)^α_N"),
        ("kaplan_d", "Kaplan et al. 2020 eq. 1.2: L(D) = (D_c/D)^α_D"),
        ("kaplan_c", "Kaplan et al. 2020 eq. 1.3: L(C) = (C_c/C)^α_C on the compute frontier"),
        ("kaplan_nd", "Kaplan et al. 2020 eq. 1.5: L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D"),
        ("data_constrained", "Muennighoff et al. 2023: repeated data and excess parameters"),
    ];
    for (law, title) in laws {
        let rows = parameter_rows(fit, law);
        if rows.is_empty() {
            continue;
        }
        blocks.push(Block::Heading(3, title.to_string()));
        blocks.push(Block::Table { header: header.clone(), rows });
    }
    if let Some((resamples, failed)) = fit.bootstrap() {
        blocks.push(Block::Paragraph(format!(
            "Intervals: {resamples} bootstrap resamples over runs ({failed} refits failed)."
        )));
    }
    blocks
}

/// Every law whose verdict is not `identified`, the not identified first: why, and what to
/// add to the sweep.
pub(crate) fn verdicts(fit: &FitJson) -> Vec<Block> {
    let mut laws: Vec<(String, Assessment)> = fit
        .laws()
        .into_iter()
        .map(|law| {
            let assessment = fit.assessment(&law);
            (law, assessment)
        })
        .filter(|(_, assessment)| !assessment.is_identified())
        .collect();
    if laws.is_empty() {
        return Vec::new();
    }
    laws.sort_by_key(|law| std::cmp::Reverse(law.1.verdict));
    let mut blocks = vec![
        Block::Heading(2, "What the data do not pin down".into()),
        Block::Paragraph(
            "A law that is not identified is shown in the tables and figures only as a diagnosis, never as a \
             result; a weak one is fitted but loosely constrained."
                .into(),
        ),
    ];
    for (law, assessment) in laws {
        blocks.push(Block::Heading(3, format!("{}: {}", law_name(&law), assessment.verdict)));
        if !assessment.reasons.is_empty() {
            blocks.push(Block::List(assessment.reasons.clone()));
        }
        if !assessment.fixes.is_empty() {
            blocks.push(Block::Paragraph("What to add or change:".into()));
            blocks.push(Block::List(assessment.fixes.clone()));
        }
    }
    blocks
}

/// a and b of approaches 1, 2, 3 side by side, then the published values.
pub(crate) fn exponents(fit: &FitJson) -> Vec<Block> {
    let mut rows = Vec::new();
    for (law, name) in
        [("frontier", "1: compute frontier"), ("isoflop", "2: IsoFLOP parabolas"), ("chinchilla", "3: parametric fit")]
    {
        if let Some((a, b)) = fit.exponents(law) {
            let (ci_a, ci_b) = (interval(fit.interval(law, "a")), interval(fit.interval(law, "b")));
            let tag = fit.assessment(law);
            let tag = if tag.is_identified() { String::new() } else { format!(" [{}]", tag.verdict) };
            rows.push(vec![format!("this sweep, approach {name}{tag}"), table_number(a), ci_a, table_number(b), ci_b]);
        }
    }
    if rows.is_empty() {
        return Vec::new();
    }
    for (who, a, b) in PUBLISHED {
        rows.push(vec![
            format!("published: {who}"),
            format!("{a:.2}"),
            String::new(),
            format!("{b:.2}"),
            String::new(),
        ]);
    }
    let header = ["", "a", "95% interval", "b", "95% interval"].map(String::from).to_vec();
    vec![Block::Heading(2, "Compute-optimal exponents: N_opt ∝ C^a, D_opt ∝ C^b".into()), Block::Table { header, rows }]
}

/// The compute-optimal N, D and loss at the fit's target compute (or, without one, at ten
/// times the sweep's largest run, from approach 3's point estimate). Each row says its law's
/// verdict where the law is not identified; without a target, a law that is not identified
/// recommends nothing.
pub(crate) fn recommendation(fit: &FitJson, largest_compute: Option<f64>) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(2, "Compute-optimal recommendation".into())];
    let from = |name: &str, law: &str| {
        let assessment = fit.assessment(law);
        if assessment.is_identified() {
            name.to_string()
        } else {
            format!("{name} ({})", assessment.verdict)
        }
    };
    let predictions: Vec<(String, Prediction)> =
        [("approach 3", "chinchilla"), ("approach 2", "isoflop"), ("approach 1", "frontier")]
            .into_iter()
            .filter_map(|(name, law)| Some((from(name, law), fit.prediction(law)?)))
            .collect();
    let header = ["from", "C (FLOPs)", "N", "95%", "D (tokens)", "95%", "D/N", "loss (nats/token)", "95%"]
        .map(String::from)
        .to_vec();
    if !predictions.is_empty() {
        let rows = predictions.iter().map(|(name, p)| prediction_row(name, p)).collect();
        blocks.push(Block::Table { header, rows });
        // The fit's own warning when the target lies far outside the compute it was fitted on.
        for warning in fit.report.warnings.iter().filter(|w| w.starts_with("--target-flops")) {
            blocks.push(Block::Paragraph(warning.clone()));
        }
        return blocks;
    }
    let (Some(law), Some(largest)) = (fit.chinchilla(), largest_compute) else {
        blocks.push(Block::Paragraph("No prediction: the fit has no target compute and no approach-3 law.".into()));
        return blocks;
    };
    let assessment = fit.assessment("chinchilla");
    if assessment.verdict == Verdict::NotIdentified {
        blocks.push(Block::Paragraph(
            "No recommendation: approach 3 is not identified by these data (see \"What the data do not pin \
             down\" for what to add), so its compute-optimal N and D are not results."
                .into(),
        ));
        return blocks;
    }
    let flops = 10.0 * largest;
    let (n_opt, d_opt) = law.compute_optimal(flops);
    let prediction =
        Prediction { flops, n_opt, d_opt, loss: Some(law.predict(n_opt, d_opt)), ci95: Default::default() };
    blocks.push(Block::Table { header, rows: vec![prediction_row(&from("approach 3", "chinchilla"), &prediction)] });
    blocks.push(Block::Paragraph(
        "fit.json has no target budget: shown at 10× the largest run, without intervals \
         (`sweeplaw fit --target-flops C` adds bootstrap intervals)."
            .into(),
    ));
    blocks
}

fn prediction_row(name: &str, p: &Prediction) -> Vec<String> {
    let ci = |key: &str, format: fn(f64) -> String| {
        p.ci95.get(key).map(|(low, high)| format!("[{}, {}]", format(*low), format(*high))).unwrap_or_default()
    };
    vec![
        name.to_string(),
        count(p.flops),
        count(p.n_opt),
        ci("N_opt", count),
        count(p.d_opt),
        ci("D_opt", count),
        format!("{:.1}", p.d_opt / p.n_opt),
        p.loss.map(table_number).unwrap_or_else(|| "not predicted".into()),
        ci("loss", table_number),
    ]
}

/// The holdout backtest: each held-out run's predicted and actual loss.
pub(crate) fn holdout(fit: &FitJson) -> Vec<Block> {
    let Some(holdout) = fit.holdout() else { return Vec::new() };
    let law = law_name(&holdout.law);
    let fitted_on = holdout.fitted_on.map(|n| format!(" on the other {n} runs")).unwrap_or_default();
    let intro = format!(
        "The {law} law, refitted{fitted_on} without the {} largest-compute runs, predicts them with a largest \
         relative error of {}.",
        holdout.held_out.len(),
        holdout.error_text()
    );
    let header = ["run", "N", "D", "C", "actual loss", "predicted", "relative error"].map(String::from).to_vec();
    let rows = holdout
        .held_out
        .iter()
        .map(|h| {
            let opt = |v: Option<f64>| v.map(count).unwrap_or_default();
            let error = 100.0 * h.rel_error();
            vec![
                format!("`{}`", h.run),
                opt(h.params),
                opt(h.tokens),
                opt(h.flops),
                table_number(h.actual),
                table_number(h.predicted),
                if error.is_finite() { format!("{error:.2}%") } else { "no finite prediction".to_string() },
            ]
        })
        .collect();
    vec![Block::Heading(2, "Holdout".into()), Block::Paragraph(intro), Block::Table { header, rows }]
}

/// How N and C were counted (docs/DESIGN.md "Counting").
pub(crate) fn counting(fit: Option<&FitJson>, counting: &Counting) -> Vec<Block> {
    let params = match counting.params {
        ParamCount::Nonembedding => "`nonembedding`: the weights of the blocks and the final norm (12·L·d² + 2·L·d + d for the GELU MLP), no token embedding or head",
        ParamCount::Total => "`total`: every weight, embeddings and head included",
        ParamCount::Matmul => "`matmul`: non-embedding plus the lm_head",
    };
    let flops = match counting.flops {
        FlopConvention::SixN => "`6n`: C = 6·N_nonembedding·D (Kaplan et al. 2020, C ≈ 6NBS)",
        FlopConvention::MatmulAttn => {
            "`matmul_attn`: C = (6·N_matmul + 6·L·T·d)·D, the head and attention scores included"
        }
        FlopConvention::Chinchilla => {
            "`chinchilla`: C = 3 × the forward count of Hoffmann et al. 2022, Appendix F, times D"
        }
    };
    let mut items = vec![
        format!("N: {params}"),
        format!("C: {flops}"),
        "D: tokens trained; loss: final validation cross-entropy in nats per token".into(),
    ];
    if let Some(fit) = fit {
        let points = fit.report.points;
        items.push(format!("the fit used {points} runs and left out {}", fit.excluded().len()));
        if let Some(reduced) = &fit.report.reduced {
            items.push(format!("rows sharing (N, D): {reduced}"));
        }
        if let Some(noise) = fit.report.noise_floor {
            items.push(format!(
                "noise floor: the loss standard deviation between seeds of one configuration is {} nats, \
                 the scale the verdicts compare differences against",
                table_number(noise)
            ));
        }
    }
    vec![Block::Heading(2, "Counting conventions".into()), Block::List(items)]
}

/// Laws not fitted, runs left out, and every warning.
pub(crate) fn notes(fit: Option<&FitJson>, warnings: &[String]) -> Vec<Block> {
    let mut items: Vec<String> = Vec::new();
    if let Some(fit) = fit {
        items.extend(fit.skipped().into_iter().map(|(law, why)| format!("law `{law}` not fitted: {why}")));
        items.extend(fit.excluded().into_iter().map(|(run, why)| format!("run `{run}` left out of the fit: {why}")));
        items.extend(fit.warnings().into_iter().map(|w| format!("fit: {w}")));
    }
    items.extend(warnings.iter().map(|w| format!("records: {w}")));
    if items.is_empty() {
        return Vec::new();
    }
    vec![Block::Heading(2, "Notes and warnings".into()), Block::List(items)]
}
