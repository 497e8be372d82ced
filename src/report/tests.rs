//! Tests of `write_report` on fixture sweeps with a planted law, and the headless-Chromium
//! check that every figure of report.html loads.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::*;
use crate::plot::fixture::{edit_fit, isoflop_sweep, write_sweep, Budgets, TempDir, PLANTED};
use crate::plot::plot_sweep;
use crate::plot::style::compact;

fn report_of(dir: &Path) -> (PlotOutput, ReportOutput, String, String) {
    let figures = plot_sweep(dir).expect("plot");
    let report = write_report(dir, &figures, None).expect("report");
    let markdown = std::fs::read_to_string(&report.markdown).expect("read report.md");
    let html = std::fs::read_to_string(&report.html).expect("read report.html");
    (figures, report, markdown, html)
}

#[test]
fn report_md_links_every_figure_and_holds_the_fitted_values() {
    let (dir, _) = isoflop_sweep("report-md");
    let (figures, _, markdown, _) = report_of(&dir.0);
    for figure in &figures.figures {
        assert!(markdown.contains(&format!("](figures/{}.png)", figure.name)), "{}", figure.name);
    }
    assert!(markdown.contains("`loss_vs_params`: no token budget"), "skipped figure and its reason");
    // Approach 3's table: E = 1.9 with the fixture's ±5% interval.
    assert!(markdown.contains("| E | 1.900 | [1.805, 1.995] |"), "{markdown}");
    // a and b side by side with the published values.
    let a = PLANTED.exponent_a();
    assert!(markdown.contains(&format!("| this sweep, approach 3: parametric fit | {a:.4} |")), "{markdown}");
    assert!(markdown.contains("| published: Hoffmann et al. 2022, approach 3 | 0.46 |  | 0.54 |  |"));
    // The recommendation at the fit's target, 1e16 FLOPs, with N from eq. 4.
    let (n_opt, _) = PLANTED.compute_optimal(1e16);
    assert!(markdown.contains(&format!("| approach 3 | 10¹⁶ | {} |", compact(n_opt, 3))), "{markdown}");
    assert!(markdown.contains("largest relative error of 2.00%"));
    assert!(markdown.contains("`6n`: C = 6·N_nonembedding·D"));
    assert!(markdown.contains("law `data_constrained` not fitted"));
    assert!(markdown.contains("```toml\nname = \"fixture\""));
}

#[test]
fn report_html_is_self_contained_with_every_figure_inlined() {
    let (dir, _) = isoflop_sweep("report-html");
    let (figures, _, _, html) = report_of(&dir.0);
    assert_eq!(html.matches("<img ").count(), figures.figures.len());
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), figures.figures.len());
    for external in ["http://", "https://", "<link", "<script", "href=", "url("] {
        assert!(!html.contains(external), "report.html refers outside itself: {external}");
    }
    let start = html.find("base64,").expect("an image") + "base64,".len();
    let end = start + html[start..].find('"').expect("end of data");
    let decoded = base64::engine::general_purpose::STANDARD.decode(&html[start..end]).expect("base64");
    assert_eq!(decoded, std::fs::read(&figures.figures[0].png).expect("png"));
}

#[test]
fn without_a_fit_the_report_describes_the_sweep_and_says_what_is_missing() {
    let dir = TempDir::new("report-nofit");
    let runs = write_sweep(&dir.0, &Budgets::Tokens(vec![1e6, 4e6]));
    let (_, report, markdown, _) = report_of(&dir.0);
    assert!(markdown.contains("No fit.json"));
    assert!(markdown.contains(&format!("{} runs: {} done", runs.len(), runs.len())));
    assert!(markdown.contains("token budgets: 10⁶, 4×10⁶"));
    assert!(markdown.contains("| 8 | 256 | 16 | 6.3×10⁶ | 2 | 2 |"), "{markdown}");
    assert!(report.warnings.is_empty());
}

#[test]
fn corrupt_fit_json_is_a_warning_not_an_error() {
    let (dir, _) = isoflop_sweep("report-badfit");
    std::fs::write(dir.0.join("fit.json"), "{ \"fits\": ").expect("write");
    let (_, report, markdown, _) = report_of(&dir.0);
    assert!(report.warnings.iter().any(|w| w.contains("fit.json line 1: not valid JSON")), "{:?}", report.warnings);
    assert!(markdown.contains("records: ") && markdown.contains("not valid JSON"));
}

/// The first Chromium on PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Marks each <img> "ok:<naturalWidth>" or "broken" on the body once the page has loaded.
const PROBE: &str = "<script>window.addEventListener('load',function(){var s=[];for(var i of document.images)\
{s.push(i.complete&&i.naturalWidth>0?'ok:'+i.naturalWidth:'broken')}\
document.body.setAttribute('data-figures',s.join(','));});</script>";

/// Runs headless Chromium on `page` and returns the DOM it dumps (killed after 60 s).
fn dump_dom(browser: &Path, page: &Path, scratch: &Path) -> String {
    let dom_path = scratch.join("dom.html");
    let dom = std::fs::File::create(&dom_path).expect("create dom file");
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        .args(["--disable-component-update", "--no-first-run", "--disable-sync", "--virtual-time-budget=10000"])
        .arg(format!("--user-data-dir={}", scratch.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::from(dom))
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    while child.try_wait().expect("wait for chromium").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(dom_path).expect("read dom")
}

#[test]
fn every_figure_of_report_html_loads_in_headless_chromium() {
    let Some(browser) = chromium() else {
        crate::requirements::skip(
            "browser",
            "the report.html figure check",
            "Chromium is not installed (Debian: apt-get install chromium)",
        );
        return;
    };
    let (dir, _) = isoflop_sweep("report-chromium");
    let (figures, _, _, html) = report_of(&dir.0);
    let page = dir.0.join("probe.html");
    std::fs::write(&page, html.replace("</body>", &format!("{PROBE}</body>"))).expect("write probe page");
    let dom = dump_dom(&browser, &page, &dir.0);
    let start = dom.find("data-figures=\"").expect("the probe ran") + "data-figures=\"".len();
    let marks: Vec<&str> = dom[start..start + dom[start..].find('"').expect("end")].split(',').collect();
    let expected: Vec<String> = figures
        .figures
        .iter()
        .map(|f| {
            let bytes = std::fs::read(&f.png).expect("png");
            format!("ok:{}", u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]))
        })
        .collect();
    assert_eq!(marks, expected);
}

#[test]
fn a_not_identified_approach_3_is_not_the_headline_and_its_reasons_and_fixes_are_given() {
    let (dir, _) = isoflop_sweep("report-verdict");
    edit_fit(&dir.0, |json| {
        json["fits"]["chinchilla"]["verdict"] = "not identified".into();
        json["fits"]["chinchilla"]["reasons"] =
            serde_json::json!(["alpha's 95% interval [0.024, 12.95] is wider than 1"]);
        json["fits"]["chinchilla"]["fixes"] = serde_json::json!(["add a FLOP budget above 1e12"]);
        json["fits"]["isoflop"]["verdict"] = "weak".into();
        json["fits"]["isoflop"]["reasons"] = serde_json::json!(["a's 95% interval [0.3, 0.6] is wider than 0.2"]);
    });
    let (_, _, markdown, _) = report_of(&dir.0);
    let headline = &markdown[..markdown.find("\n## ").expect("a second section")];
    assert!(!headline.contains("Approach 3: L(N, D)"), "{headline}");
    assert!(headline.contains("Approach 2 (IsoFLOP parabolas): N_opt ∝ C^a"), "{headline}");
    assert!(headline.contains("(weak: a's 95% interval [0.3, 0.6] is wider than 0.2)"), "{headline}");
    assert!(headline.contains("Not identified by these data: approach 3"), "{headline}");
    let section = &markdown[markdown.find("## What the data do not pin down").expect("verdict section")..];
    assert!(section.contains("### approach 3: not identified"), "{section}");
    assert!(section.contains("alpha's 95% interval [0.024, 12.95] is wider than 1"));
    assert!(section.contains("add a FLOP budget above 1e12"));
    assert!(section.find("approach 3: not identified") < section.find("approach 2: weak"), "worst first");
    assert!(markdown.contains("| this sweep, approach 3: parametric fit [not identified] |"), "{markdown}");
}

#[test]
fn a_weak_approach_3_headline_gives_its_whole_first_reason() {
    let (dir, _) = isoflop_sweep("report-weak3");
    edit_fit(&dir.0, |json| {
        json["fits"]["chinchilla"]["verdict"] = "weak".into();
        json["fits"]["chinchilla"]["reasons"] = serde_json::json!(["alpha's 95% interval spans 0.53 (more than 0.2)"]);
    });
    let (_, _, markdown, _) = report_of(&dir.0);
    let headline = &markdown[..markdown.find("\n## ").expect("a second section")];
    assert!(headline.contains("Approach 3: L(N, D)"), "a weak law is still the headline: {headline}");
    assert!(
        headline.contains("- Approach 3 is weak: alpha's 95% interval spans 0.53 (more than 0.2)\n"),
        "the reason keeps its closing parenthesis: {headline}"
    );
}

#[test]
fn the_headline_counts_runs_against_the_plan_when_summary_csv_lists_fewer() {
    // Two unreadable summary.csv rows made "42 of 42 runs done" read "40 of 40".
    let (dir, _) = isoflop_sweep("report-planned");
    let mut sweep = crate::plot::records::Sweep::read(&dir.0).expect("read the fixture sweep");
    let listed = sweep.runs.len();
    let first_item = |sweep: &crate::plot::records::Sweep| {
        let file = FitFile { stale: None, absent: String::new() };
        let blocks = sections::headline(sweep, None, &file, &crate::plot::records::Counting::default());
        match blocks.iter().find_map(|b| if let document::Block::List(items) = b { Some(items.clone()) } else { None })
        {
            Some(items) => items[0].clone(),
            None => panic!("no list in the headline: {blocks:?}"),
        }
    };
    sweep.planned = Some(listed);
    assert!(first_item(&sweep).starts_with(&format!("{listed} of {listed} runs done;")), "{}", first_item(&sweep));
    sweep.planned = Some(listed + 2);
    let item = first_item(&sweep);
    assert!(item.starts_with(&format!("{listed} of {} planned runs done", listed + 2)), "{item}");
    assert!(item.contains(&format!("summary.csv lists {listed}")) && item.contains("sweeplaw summary"), "{item}");
}

#[test]
fn the_headline_gives_the_fit_command_with_its_counting_conventions() {
    let (dir, _) = isoflop_sweep("report-command");
    let (_, _, markdown, _) = report_of(&dir.0);
    assert!(!markdown.contains("fitted by `sweeplaw fit"), "the fixture's fit.json records no options");
    edit_fit(&dir.0, |json| {
        let mut settings = crate::fit::FitOptions::default().settings();
        settings.holdout = 3;
        settings.flops = "matmul_attn".into();
        json["options"] = serde_json::to_value(&settings).expect("settings are JSON");
    });
    let (_, _, markdown, _) = report_of(&dir.0);
    let expected =
        format!("fitted by `sweeplaw fit {} --params nonembedding --flops matmul_attn --holdout 3`", dir.0.display());
    assert!(markdown.contains(&expected), "{expected} not in {markdown}");
}

/// report.md's headline list.
fn headline_of(markdown: &str) -> &str {
    &markdown[..markdown.find("\n## ").unwrap_or(markdown.len())]
}

#[test]
fn a_stale_fit_kept_as_it_was_is_marked_stale_not_named_as_made_by_its_command() {
    let (dir, _) = isoflop_sweep("report-stale");
    edit_fit(&dir.0, |json| {
        let mut settings = crate::fit::FitOptions::default().settings();
        settings.holdout = 3;
        json["options"] = serde_json::to_value(&settings).expect("settings are JSON");
    });
    let figures = plot_sweep(&dir.0).expect("plot");
    let stale = StaleFit { reason: "its recorded `options` are not valid: unknown law 'bogus'".into() };
    write_report(&dir.0, &figures, Some(&stale)).expect("report");
    let markdown = std::fs::read_to_string(dir.0.join("report.md")).expect("report.md");
    let expected = format!(
        "- stale: fit.json is older than the records and was not refitted, so the results below are of earlier \
         records and its recorded options, `sweeplaw fit {} --params nonembedding --flops 6n --holdout 3`, do not \
         reproduce them; why: its recorded `options` are not valid: unknown law 'bogus'\n",
        dir.0.display()
    );
    assert!(headline_of(&markdown).contains(&expected), "{expected} not in {markdown}");
    assert!(!markdown.contains("fitted by"), "{markdown}");
    // Still drawn and quoted as it was.
    assert!(headline_of(&markdown).contains("Approach 3: L(N, D)"), "{markdown}");
}

#[test]
fn a_law_holding_values_no_fit_produces_is_named_unusable_and_not_quoted() {
    let (dir, _) = isoflop_sweep("report-impossible");
    edit_fit(&dir.0, |json| {
        json["fits"]["chinchilla"]["params"]["E"] = (-5.0).into();
        json["fits"]["chinchilla"]["params"]["alpha"] = 1e308.into();
    });
    let (_, report, markdown, _) = report_of(&dir.0);
    let why = "fits.chinchilla.params.E = -5 is negative, and the fit holds this parameter as its logarithm; \
               fits.chinchilla.params.alpha = 1e308 is beyond ±100, an exponent no fit produces";
    let expected = format!(
        "- Approach 3 unusable: fit.json holds values for it that no fit produces ({why}), so it is left out; rerun \
         `sweeplaw fit {}` to replace fit.json\n",
        dir.0.display()
    );
    assert!(headline_of(&markdown).contains(&expected), "{expected} not in {markdown}");
    let warning = format!("{}: corrupt: {why}; approach 3 is unusable", dir.0.join("fit.json").display());
    assert!(report.warnings.iter().any(|w| w.starts_with(&warning)), "{:?}", report.warnings);
    // Neither the values nor what follows from them are quoted; approach 2 heads the headline.
    for quoted in ["E = -5.000", "| E | -5", "10³⁰⁸", "### Approach 3", "| approach 3 |", "parametric fit"] {
        assert!(!markdown.contains(quoted), "{quoted} in {markdown}");
    }
    assert!(headline_of(&markdown).contains("- Approach 2 (IsoFLOP parabolas): N_opt ∝ C^a"), "{markdown}");
}

#[test]
fn an_unreadable_fit_json_is_named_with_the_command_that_replaces_it() {
    let (dir, _) = isoflop_sweep("report-unreadable");
    std::fs::write(dir.0.join("fit.json"), "{ \"fits\": ").expect("write");
    let (_, _, markdown, _) = report_of(&dir.0);
    let expected = format!(
        "\nNo fit results: {} is unreadable (see the warning): rerun `sweeplaw fit {}` to replace it.\n",
        dir.0.join("fit.json").display(),
        dir.0.display()
    );
    assert!(markdown.contains(&expected), "{expected} not in {markdown}");
    assert!(!markdown.contains("No fit.json"), "{markdown}");
}

#[test]
fn the_recommendation_labels_its_laws_and_a_law_not_identified_recommends_nothing_unasked() {
    // The text sweep's report recommended N = 5.95e4 from an approach 3 labelled not identified.
    let (dir, _) = isoflop_sweep("report-recommend");
    let section = |markdown: &str| {
        let start = markdown.find("## Compute-optimal recommendation").expect("the section");
        let rest = &markdown[start + 3..];
        rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
    };
    edit_fit(&dir.0, |json| {
        json["fits"]["chinchilla"]["verdict"] = "weak".into();
        json["fits"]["isoflop"]["verdict"] = "not identified".into();
        json["fits"]["isoflop"]["prediction"] = serde_json::json!({ "flops": 1e16, "N_opt": 1e7, "D_opt": 1.6e8 });
    });
    let with_target = section(&report_of(&dir.0).2);
    assert!(with_target.contains("| approach 3 (weak) |"), "{with_target}");
    assert!(with_target.contains("| approach 2 (not identified) |"), "{with_target}");
    assert!(with_target.contains("| not predicted |"), "approach 2 gives no loss: {with_target}");
    edit_fit(&dir.0, |json| {
        json["fits"]["chinchilla"].as_object_mut().expect("an object").remove("prediction");
        json["fits"]["isoflop"].as_object_mut().expect("an object").remove("prediction");
    });
    let weak = section(&report_of(&dir.0).2);
    assert!(weak.contains("| approach 3 (weak) |") && weak.contains("10× the largest run"), "{weak}");
    edit_fit(&dir.0, |json| json["fits"]["chinchilla"]["verdict"] = "not identified".into());
    let not_identified = section(&report_of(&dir.0).2);
    assert!(not_identified.contains("No recommendation: approach 3 is not identified"), "{not_identified}");
    assert!(!not_identified.contains("| approach 3"), "{not_identified}");
}

#[test]
fn a_fit_json_without_verdicts_reads_as_identified() {
    let (dir, _) = isoflop_sweep("report-noverdict");
    let (_, _, markdown, _) = report_of(&dir.0);
    assert!(markdown.contains("Approach 3: L(N, D)"));
    assert!(!markdown.contains("What the data do not pin down") && !markdown.contains("Not identified by"));
}

#[test]
fn a_sweep_given_as_a_relative_dot_path_is_titled_by_its_real_name() {
    let dir = TempDir::new("report-dotname");
    let inner = dir.0.join("inner");
    std::fs::create_dir_all(&inner).expect("mkdir");
    let expected = dir.0.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    assert_eq!(sections::headline::sweep_name(&inner.join("..")), expected);
    assert_eq!(sections::headline::sweep_name(&dir.0), expected);
    let cwd = std::env::current_dir().expect("cwd");
    let expected_cwd = cwd.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    assert_eq!(sections::headline::sweep_name(Path::new(".")), expected_cwd);
    assert!(!expected_cwd.is_empty());
}

#[test]
fn the_seeds_noise_floor_and_the_reduction_are_stated_where_the_fit_has_them() {
    let (dir, _) = isoflop_sweep("report-noise");
    let (_, _, markdown, _) = report_of(&dir.0);
    assert!(!markdown.contains("noise floor"), "no seeds, no noise floor: {markdown}");
    edit_fit(&dir.0, |json| {
        json["reduced"] = "12 rows in 10 (N, D) groups: mean over seeds in 2 (--reduce auto)".into();
        json["noise_floor"] = 0.006083.into();
    });
    let (_, _, markdown, _) = report_of(&dir.0);
    assert!(markdown.contains("rows sharing (N, D): 12 rows in 10 (N, D) groups"), "{markdown}");
    assert!(markdown.contains("between seeds of one configuration is 0.006083 nats"), "{markdown}");
}
