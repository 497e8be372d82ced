//! The report's headline: what was fitted, in one list, with each law's verdict; a stale fit.json
//! kept as it was, or a law holding values no fit produces, is said so here first.

use crate::counting::{FlopConvention, ParamCount};
use crate::plot::fitjson::{law_name, FitJson};
use crate::plot::records::{Counting, Sweep};
use crate::plot::style::table_number;
use crate::records::verdict::Verdict;
use crate::report::document::Block;
use crate::report::FitFile;

use super::interval;

/// The sweep directory's name, also when it is given as `.` or `..` (which have none).
pub(crate) fn sweep_name(dir: &std::path::Path) -> String {
    let named = dir.file_name().map(|n| n.to_string_lossy().to_string());
    let resolved = || dir.canonicalize().ok()?.file_name().map(|n| n.to_string_lossy().to_string());
    named.or_else(resolved).unwrap_or_else(|| dir.display().to_string())
}

/// The headline: what was fitted, in one list. A stale fit.json kept as it was is marked so,
/// its recorded options named as what does not reproduce it; a law whose values in fit.json
/// no fit produces is named as unusable.
pub(crate) fn headline(sweep: &Sweep, fit: Option<&FitJson>, file: &FitFile<'_>, counting: &Counting) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(1, format!("Scaling-law report: {}", sweep_name(&sweep.dir)))];
    let done = sweep.runs.iter().filter(|r| r.is_done()).count();
    let listed = sweep.runs.len();
    let counted = match sweep.planned {
        Some(planned) if planned != listed => format!(
            "{done} of {} done (summary.csv lists {listed}; `sweeplaw summary {}` rebuilds it from the run folders)",
            crate::human::plural(planned, "planned run"),
            sweep.dir.display()
        ),
        _ => format!("{done} of {} done", crate::human::plural(listed, "run")),
    };
    let mut items = vec![format!("{counted}; regenerate with `sweeplaw report {}`", sweep.dir.display())];
    let Some(fit) = fit else {
        blocks.push(Block::List(items));
        blocks.push(Block::Paragraph(file.absent.clone()));
        return blocks;
    };
    // The command that made fit.json, with its counting conventions always spelled out: an
    // exponent is quotable only with the N and C it was fitted in.
    let command = fit.report.options.as_ref().map(|options| {
        let mut defaults = crate::fit::FitOptions::default().settings();
        defaults.params.clear();
        defaults.flops.clear();
        format!("`sweeplaw fit {} {}`", sweep.dir.display(), options.flags_beyond(&defaults).join(" "))
    });
    match (file.stale, command) {
        (None, Some(command)) => items.push(format!("fitted by {command}")),
        (None, None) => {}
        (Some(stale), command) => items.push(format!(
            "stale: fit.json is older than the records and was not refitted, so the results below are of earlier \
             records{}; why: {}",
            command.map(|c| format!(" and its recorded options, {c}, do not reproduce them")).unwrap_or_default(),
            stale.reason
        )),
    }
    for (law, why) in fit.unusable_laws() {
        items.push(format!(
            "{} unusable: fit.json holds values for it that no fit produces ({why}), so it is left out; rerun \
             `sweeplaw fit {}` to replace fit.json",
            capitalised(&law_name(law)),
            sweep.dir.display()
        ));
    }
    // The headline is what the data support: a law that is not identified is left to the
    // section on what the data do not pin down; a weak one says so.
    let shown = |law: &str| fit.assessment(law).verdict != Verdict::NotIdentified;
    let weak = |law: &str| match fit.verdict_note(law) {
        Some(note) => format!(" ({note})"),
        None => String::new(),
    };
    let approach3 = fit.chinchilla().filter(|_| shown("chinchilla"));
    if let Some(law) = approach3 {
        let ci = |key: &str| interval(fit.interval("chinchilla", key));
        items.push(format!(
            "Approach 3: L(N, D) = E + A/N^α + B/D^β with E = {} {}, α = {} {}, β = {} {} nats/token",
            table_number(law.e),
            ci("E"),
            table_number(law.alpha),
            ci("alpha"),
            table_number(law.beta),
            ci("beta")
        ));
        items.push(format!(
            "N_opt ∝ C^a, D_opt ∝ C^b with a = {} {}, b = {} {}",
            table_number(law.exponent_a()),
            ci("a"),
            table_number(law.exponent_b()),
            ci("b")
        ));
    }
    if let Some(note) = approach3.and_then(|_| fit.verdict_note("chinchilla")) {
        items.push(format!("Approach 3 is {note}"));
    }
    if approach3.is_none() {
        for (law, name) in
            [("isoflop", "Approach 2 (IsoFLOP parabolas)"), ("frontier", "Approach 1 (compute frontier)")]
        {
            let Some((a, b)) = fit.exponents(law).filter(|_| shown(law)) else { continue };
            items.push(format!(
                "{name}: N_opt ∝ C^a, D_opt ∝ C^b with a = {} {}, b = {} {}{}",
                table_number(a),
                interval(fit.interval(law, "a")),
                table_number(b),
                interval(fit.interval(law, "b")),
                weak(law)
            ));
        }
    }
    if let Some((alpha, _)) = fit.power_law("kaplan_c", "alpha_C", "C_c").filter(|_| shown("kaplan_c")) {
        items.push(format!("Kaplan L(C) on the compute frontier: α_C = {}{}", table_number(alpha), weak("kaplan_c")));
    }
    let missing: Vec<String> = fit.laws().iter().filter(|law| !shown(law)).map(|law| law_name(law)).collect();
    if !missing.is_empty() {
        items.push(format!(
            "Not identified by these data: {} (see “What the data do not pin down” for what is missing and the fixes)",
            missing.join(", ")
        ));
    }
    if let Some(holdout) = fit.holdout() {
        items.push(format!(
            "Holdout: largest relative error {} on {} held-out runs",
            holdout.error_text(),
            holdout.held_out.len()
        ));
    }
    items.push(format!("N counts {}, C counts {}", param_name(counting), flop_name(counting)));
    blocks.push(Block::List(items));
    blocks
}

/// `text` with its first letter upper-case ("approach 3" -> "Approach 3").
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn param_name(counting: &Counting) -> &'static str {
    match counting.params {
        ParamCount::Nonembedding => "non-embedding parameters",
        ParamCount::Total => "all parameters",
        ParamCount::Matmul => "non-embedding parameters plus the head",
    }
}

fn flop_name(counting: &Counting) -> &'static str {
    match counting.flops {
        FlopConvention::SixN => "6ND",
        FlopConvention::MatmulAttn => "(6 N_matmul + 6 L T d) D",
        FlopConvention::Chinchilla => "3 × the Hoffmann et al. 2022 App. F forward count",
    }
}
