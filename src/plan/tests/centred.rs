//! Tests of centred grids: sizes placed around each budget's predicted optimum, from Chinchilla's
//! 20 tokens per parameter or a fit.json's approach-3 law, and the warnings and refusals when that
//! law cannot support the optimum it predicts.

use super::*;

fn centred(head_dim: usize, grid: &str, flops: &str) -> SweepConfig {
    let text = format!(
        "name = \"t\"\n[data]\nkind = \"synthetic\"\nvocab_size = 256\n[model]\nseq_len = 64\nhead_dim = {head_dim}\n\
         [grid]\n{grid}\n[budget]\nflops = {flops}\n[train]\n{FIXED}\n"
    );
    let config: SweepConfig = toml::from_str(&text).unwrap();
    config.validate().unwrap();
    config
}

#[test]
fn centred_grid_sizes_are_symmetric_in_log_n_around_each_budgets_optimum() {
    let grid = "centre = \"chinchilla\"\naspect_ratio = 32\nspan = 4.0\nsizes = 5";
    let config = centred(8, grid, "[1e13, 1e14]");
    let plan = expand(&config).unwrap();
    for c in [1e13, 1e14] {
        let n_opt = centre::predicted_optimum(&config, c).unwrap();
        // Chinchilla's centre: the optimum's own shape trains on about 20 tokens per parameter.
        let shape = centre::shape_for(&config, n_opt).unwrap();
        let tpp = c / shape.flops_per_token_for(FlopConvention::SixN) / shape.params_nonembedding() as f64;
        assert!((tpp / 20.0 - 1.0).abs() < 0.15, "C = {c:e}: {tpp} tokens per parameter at N* = {n_opt}");
        let mut sizes: Vec<f64> = plan
            .runs
            .iter()
            .filter(|r| r.flop_budget == Some(c))
            .map(|r| r.shape.params_nonembedding() as f64)
            .collect();
        sizes.sort_by(f64::total_cmp);
        assert_eq!(sizes.len(), 5, "C = {c:e}: {sizes:?}");
        for (i, n) in sizes.iter().enumerate() {
            // Targets N*·4^(i/2 − 1): 1/4, 1/2, 1, 2, 4 × N*, each rounded to a valid shape.
            let target = n_opt * 4f64.powf(i as f64 / 2.0 - 1.0);
            assert!((n / target).ln().abs() < 0.12, "C = {c:e}: size {n} for target {target}");
            let mirror = sizes[4 - i];
            assert!(((n * mirror).sqrt() / n_opt).ln().abs() < 0.12, "C = {c:e}: {n} and {mirror} around {n_opt}");
        }
        assert!(plan.runs.iter().all(|r| r.shape.d_model % 8 == 0 && r.shape.n_heads * 8 == r.shape.d_model));
    }
    // Each budget its own sizes; a budget's run ids do not depend on the other budgets.
    let alone = expand(&centred(8, grid, "[1e13]")).unwrap();
    let ids = |p: &Plan| {
        let mut v: Vec<String> =
            p.runs.iter().filter(|r| r.flop_budget == Some(1e13)).map(|r| r.run_id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&alone), ids(&plan));
    let smallest = |c: f64| {
        plan.runs.iter().filter(|r| r.flop_budget == Some(c)).map(|r| r.shape.params_nonembedding()).min().unwrap()
    };
    assert!(smallest(1e14) as f64 > 2.0 * smallest(1e13) as f64, "the larger budget gets larger sizes");
    assert!(plan.warnings.iter().all(|w| !w.contains("straddle") && !w.contains("off-centre")), "{:?}", plan.warnings);
}

#[test]
fn a_fit_json_centre_places_the_optimum_of_its_law() {
    let dir = std::env::temp_dir().join(format!("sweeplaw-centre-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fit = dir.join("fit.json");
    // α = β = 0.3, A = 4B: G = (A/B)^(1/0.6) and N* = G·(C/k)^(1/2).
    std::fs::write(
        &fit,
        r#"{"param_count": "nonembedding", "fits": {"chinchilla": {"params": {"E": 1.5, "A": 400.0, "B": 100.0, "alpha": 0.3, "beta": 0.3}}}}"#,
    )
    .unwrap();
    let mut config = centred(8, "centre = \"fit.json\"\naspect_ratio = 32", "[1e13]");
    crate::plan::resolve::resolve_centre(&mut config.grid, &dir.join("sweep.toml")).unwrap();
    let n_opt = centre::predicted_optimum(&config, 1e13).unwrap();
    let shape = centre::shape_for(&config, n_opt).unwrap();
    let k = shape.flops_per_token_for(FlopConvention::SixN) / shape.params_nonembedding() as f64;
    let expected = 4f64.powf(1.0 / 0.6) * (1e13 / k).sqrt();
    assert!((n_opt / expected - 1.0).abs() < 0.02, "{n_opt} vs {expected}");
    // A law without a compute optimum (negative alpha) is refused, naming the file.
    std::fs::write(
        &fit,
        r#"{"param_count": "nonembedding", "fits": {"chinchilla": {"params": {"E": 0.0, "A": 1e-4, "B": 16.0, "alpha": -0.55, "beta": 0.1}}}}"#,
    )
    .unwrap();
    let e = crate::config::CentreLaw::read(&fit).unwrap_err();
    assert!(e.contains("fit.json") && e.contains("alpha = -0.55"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn chinchilla_optimum_is_about_twenty_tokens_per_parameter() {
    let c = 5.76e23; // Chinchilla's budget
    let n = chinchilla_n_opt(c);
    let d = c / (6.0 * n);
    assert!((n / 1e9 - 70.0).abs() < 25.0, "N_opt {n:.3e}");
    assert!((15.0..35.0).contains(&(d / n)), "D/N = {}", d / n);
}

/// A directory with a fit.json of `text` in it, unique to the test.
fn fit_dir(test: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sweeplaw-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fit.json"), text).unwrap();
    dir
}

/// The approach-3 law whose optimum is Chinchilla's 20 tokens per parameter: α = β = 0.3 and
/// A/B = 20^(-0.3), so G = (A/B)^(1/0.6) = 1/√20 and N* = (C / (20k))^(1/2).
fn twenty_tokens_law(verdict: &str) -> String {
    format!(
        r#"{{"param_count": "nonembedding", "fits": {{"chinchilla": {{"params": {{"E": 1.5, "A": {}, "B": 100.0, "alpha": 0.3, "beta": 0.3}}, {verdict}}}}}}}"#,
        100.0 * 20f64.powf(-0.3)
    )
}

#[test]
fn a_centre_law_that_is_not_identified_is_a_plan_warning_naming_its_verdict_and_first_reason() {
    let reasons =
        r#""reasons": ["alpha's 95% interval spans 18.84 (more than 1)", "E's 95% interval reaches its bound 0"]"#;
    let warnings_for = |verdict: &str| {
        let dir = fit_dir("centre-verdict", &twenty_tokens_law(verdict));
        let mut config = centred(16, "centre = \"fit.json\"\naspect_ratio = 16\nspan = 4.0\nsizes = 5", "[1e13, 4e13]");
        crate::plan::resolve::resolve_centre(&mut config.grid, &dir.join("sweep.toml")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        expand(&config).unwrap().warnings
    };
    let w = warnings_for(&format!(r#""verdict": "not identified", {reasons}"#));
    let about: Vec<&String> = w.iter().filter(|w| w.starts_with("grid.centre")).collect();
    assert_eq!(about.len(), 1, "{w:?}");
    assert!(
        about[0].starts_with(
            "grid.centre = \"fit.json\": its approach-3 law is `not identified` (alpha's 95% interval spans 18.84 \
             (more than 1); 1 more reason(s) in that fit.json), so the optimum it predicts for each budget"
        ) && about[0].contains("is not supported by its data"),
        "{w:?}"
    );
    let w = warnings_for(r#""verdict": "weak", "reasons": ["beta's 95% interval spans 0.3 (more than 0.2)"]"#);
    assert!(
        w.iter().any(|w| w.contains("law is `weak` (beta's 95% interval spans 0.3 (more than 0.2))")
            && w.contains("only loosely supported by its data")),
        "{w:?}"
    );
    // The same law, identified, centres the grid without a warning (but the one that two
    // budgets are too few for approach 2's exponents).
    let w = warnings_for(r#""verdict": "identified""#);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("2 FLOP budget(s) with 3+ model sizes: approach 2 needs 3+"), "{w:?}");
}

#[test]
fn a_centred_budget_that_misses_its_optimum_is_not_told_to_centre_it() {
    // Without a centre: centre it. With one: the cause in this budget's centred grid.
    let plain = expand(&config("n_layers = [1]\nd_model = [16, 32]", "flops = [4e11]", FIXED)).unwrap();
    assert!(plain
        .warnings
        .iter()
        .any(|w| w.contains("do not straddle") && w.ends_with("(centre it with grid.centre)")));
    let narrow =
        expand(&centred(16, "centre = \"chinchilla\"\naspect_ratio = 16\nspan = 1.5\nsizes = 3", "[1e13]")).unwrap();
    let w: Vec<&String> = narrow.warnings.iter().filter(|w| w.contains("do not straddle")).collect();
    assert_eq!(w.len(), 1, "{:?}", narrow.warnings);
    assert!(
        w[0].ends_with(
            "(grid.centre already centres this budget; grid.span = 1.5 is below checks.optimum_room = 2: \
             widen grid.span to at least 2)"
        ),
        "{w:?}"
    );
    // A budget whose optimum is within a factor 2 of the family's smallest shape (L1-d16).
    let small =
        expand(&centred(16, "centre = \"chinchilla\"\naspect_ratio = 16\nspan = 4.0\nsizes = 5", "[2e9]")).unwrap();
    let w: Vec<&String> = small.warnings.iter().filter(|w| w.contains("do not straddle")).collect();
    assert_eq!(w.len(), 1, "{:?}", small.warnings);
    assert!(
        w[0].contains("grid.centre already centres this budget; the family's smallest shape L1-d16 (")
            && w[0].ends_with("so no size can be below it: raise this budget or lower model.head_dim)"),
        "{w:?}"
    );
}

#[test]
fn a_fit_json_that_cannot_centre_a_grid_says_why() {
    // A fit of a CSV: N as the CSV gave it, not a count of this family.
    let dir = fit_dir(
        "centre-as-given",
        r#"{"param_count": "as given", "fits": {"chinchilla": {"params": {"E": 1.5, "A": 400.0, "B": 100.0, "alpha": 0.3, "beta": 0.3}}}}"#,
    );
    let e = crate::config::CentreLaw::read(&dir.join("fit.json")).unwrap_err();
    assert!(
        e.contains("fit.json: param_count is \"as given\": a fit of a CSV counts N as the CSV gave it")
            && e.contains("cannot predict sizes of this family"),
        "{e}"
    );
    // A parameter the fit could not find (NaN, written as null), and a compute model of nulls,
    // as sweeplaw writes them for a fit that failed.
    let nulls = r#"{"param_count": "nonembedding", "fits": {"chinchilla": {"params": {"E": 0.0, "A": 7.7e56, "B": 7.4e10, "alpha": null, "beta": 0.035, "compute": {"coefficient": null, "params_exponent": null}}, "a": null, "verdict": "not identified"}}}"#;
    std::fs::write(dir.join("fit.json"), nulls).unwrap();
    let e = crate::config::CentreLaw::read(&dir.join("fit.json")).unwrap_err();
    assert!(e.contains("fit.json: approach 3 has no finite fitted alpha") && e.contains("cannot centre a grid"), "{e}");
    // With every parameter finite, the nulls of the compute model do not stop it being read.
    std::fs::write(dir.join("fit.json"), nulls.replace(r#""alpha": null"#, r#""alpha": 0.19"#)).unwrap();
    let law = crate::config::CentreLaw::read(&dir.join("fit.json")).unwrap();
    assert_eq!((law.alpha, law.assessment.verdict), (0.19, crate::records::verdict::Verdict::NotIdentified));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_centre_law_holding_a_value_no_fit_produces_is_refused_naming_the_field() {
    let text = twenty_tokens_law(r#""verdict": "identified""#).replace(r#""E": 1.5"#, r#""E": -5.0"#);
    let dir = fit_dir("centre-impossible", &text);
    let message = match crate::config::CentreLaw::read(&dir.join("fit.json")) {
        Err(message) => message,
        Ok(_) => panic!("a law with E = -5 centred a grid"),
    };
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(message.contains("fit.json: corrupt") && message.contains("fits.chinchilla.params.E = -5"), "{message}");
    // The same law with E = 1.5 reads.
    let dir = fit_dir("centre-possible", &twenty_tokens_law(r#""verdict": "identified""#));
    assert!(crate::config::CentreLaw::read(&dir.join("fit.json")).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}
