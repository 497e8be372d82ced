//! `sweeplaw ladder`: two rungs of a tiny IsoFLOP sweep on the synthetic language, the forecast
//! written before rung 2 trains and checked after, a rerun that resumes, and bad input.

use crate::common::*;

fn ladder_config(name: &str, budget: &str, grid: &str) -> String {
    format!(
        r#"name = "{name}"
device = "cpu"

[data]
kind = "synthetic"
vocab_size = 128

[model]
seq_len = 16
head_dim = 8

[grid]
{grid}

[budget]
{budget}

[train]
batch_size = 4
lr = 1e-2
eval_tokens = 512
"#
    )
}

const CENTRED: &str = "centre = \"chinchilla\"\naspect_ratio = 8\nspan = 3.0\nsizes = 4";

#[test]
fn a_ladder_predicts_each_rung_before_training_it_and_resumes() {
    let dir = scratch("ladder");
    let config = write(&dir, "l.toml", &ladder_config("tiny", "flops = [3e8, 1e9]", CENTRED));
    let results = dir.join("results");
    let args = ["ladder", config.to_str().unwrap(), "--rungs", "2", "--step", "3", "--bootstrap", "40", "--quiet"];
    let mut with_results = args.to_vec();
    with_results.extend(["--results", results.to_str().unwrap()]);
    let out = run(&with_results);
    assert!(out.status.success(), "{}", stderr(&out));
    let ladder = results.join("tiny-ladder");
    for file in ["ladder.json", "law-rung1.json", "law-rung2.json", "rung1.toml", "rung2.toml", "rung1/summary.csv"] {
        assert!(ladder.join(file).exists(), "{file} missing");
    }
    let text = std::fs::read_to_string(ladder.join("ladder.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rungs = record["rungs"].as_array().unwrap();
    assert_eq!(rungs.len(), 2);
    assert_eq!(rungs[1]["budgets"], serde_json::json!([9e8, 3e9]));
    assert_eq!(rungs[1]["centred_on"], "law-rung1.json");
    // Rung 2's sizes are centred on rung 1's law: rung2.toml names it.
    assert!(std::fs::read_to_string(ladder.join("rung2.toml")).unwrap().contains("law-rung1.json"));
    let predictions = rungs[1]["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2, "{text}");
    for (prediction, observed) in predictions.iter().zip(rungs[1]["observed"].as_array().unwrap()) {
        assert_eq!(prediction["fitted_on_rungs"], 1);
        let (predicted, measured) = (prediction["loss"].as_f64().unwrap(), observed["loss"].as_f64().unwrap());
        let error = observed["loss_error"].as_f64().unwrap();
        assert!((error - (predicted / measured - 1.0)).abs() < 1e-9, "{observed}");
        assert!(measured.is_finite() && measured > 0.0 && observed["n_opt"].as_f64().unwrap() > 0.0);
        assert!(["identified", "weak", "not identified"].contains(&prediction["verdict"].as_str().unwrap()));
    }
    let table = stdout(&out);
    assert!(table.contains("predicted loss [95%]") && table.contains("forecast loss error: max"), "{table}");
    // The rerun, from another working directory, trains nothing and keeps the forecast as it
    // was made, before rung 2 trained: no rung's identity depends on where it was started from.
    let out = sweeplaw()
        .current_dir(&dir)
        .args([
            "ladder",
            "l.toml",
            "--rungs",
            "2",
            "--step",
            "3",
            "--bootstrap",
            "40",
            "--quiet",
            "--results",
            "results",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(ladder.join("ladder.json")).unwrap(), text, "ladder.json kept to the byte");
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ladder.join("ladder.json")).unwrap()).unwrap();
    assert_eq!(again["rungs"][1]["predictions"], record["rungs"][1]["predictions"]);
    assert!(!stderr(&out).contains("done C"), "retrained: {}", stderr(&out));
    // rung2.toml is the rung's config as run: it plans the same sweep, and sweeping it into the
    // ladder's folder finds every run done.
    let rung2 = ladder.join("rung2.toml");
    let out = run(&["plan", rung2.to_str().unwrap(), "--no-measure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["sweep", rung2.to_str().unwrap(), "--results", ladder.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("trained 0"), "{}", stdout(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// 0 identified, 1 weak, 2 not identified.
fn rank(verdict: &serde_json::Value) -> usize {
    let verdict = verdict.as_str().unwrap_or_default();
    ["identified", "weak", "not identified"].iter().position(|v| *v == verdict).unwrap_or_else(|| panic!("{verdict}"))
}

#[test]
fn leaving_out_the_bootstrap_never_improves_a_forecasts_verdict() {
    let dir = scratch("ladder-no-bootstrap");
    let config = write(&dir, "l.toml", &ladder_config("nob", "flops = [3e8, 1e9]", CENTRED));
    let results = dir.join("results");
    let climbed = run(&[
        "ladder",
        config.to_str().unwrap(),
        "--rungs",
        "2",
        "--step",
        "3",
        "--bootstrap",
        "0",
        "--quiet",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(climbed.status.success(), "{}", stderr(&climbed));
    let ladder = results.join("nob-ladder");
    let read = |path: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    // What a bootstrapped fit of rung 1 says of approach 3: the forecast may not be labelled better.
    let oracle = dir.join("rung1-fit.json");
    let out = run(&[
        "fit",
        ladder.join("rung1").to_str().unwrap(),
        "--law",
        "chinchilla",
        "--bootstrap",
        "200",
        "--out",
        oracle.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let oracle = &read(&oracle)["fits"]["chinchilla"];
    let law_json = read(&ladder.join("law-rung1.json"));
    let law = &law_json["fits"]["chinchilla"];
    let record = read(&ladder.join("ladder.json"));
    let predictions = record["rungs"][1]["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    for prediction in predictions {
        let verdict = rank(&prediction["verdict"]);
        assert!(verdict >= rank(&oracle["verdict"]), "{} better than {}", prediction["verdict"], oracle["verdict"]);
        assert!(verdict >= rank(&law["verdict"]).max(1), "{prediction}");
        for reason in law["reasons"].as_array().unwrap() {
            assert!(prediction["reasons"].as_array().unwrap().contains(reason), "{reason} missing: {prediction}");
        }
        assert!(prediction["loss_ci95"].is_null(), "no interval without a bootstrap: {prediction}");
    }
    // The law that predicts rung 2 is bootstrapped all the same: its verdict reads its intervals.
    assert_eq!(law_json["options"]["bootstrap"], 1000, "{}", law_json["options"]);
    let table = stdout(&climbed);
    let label = format!("came from a law that is {}", predictions[0]["verdict"].as_str().unwrap());
    assert!(table.contains(&label), "{table}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_ladder_refuses_what_it_cannot_climb() {
    let dir = scratch("ladder-bad");
    let results = dir.join("results");
    let tokens = write(&dir, "t.toml", &ladder_config("tok", "tokens = [10240]", "n_layers = [1]\nd_model = [16]"));
    let out = run(&["ladder", tokens.to_str().unwrap(), "--results", results.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("t.toml") && err.contains("[budget] flops") && err.lines().count() == 1, "{err}");
    let fixed = write(&dir, "f.toml", &ladder_config("fix", "flops = [3e8]", "n_layers = [1]\nd_model = [16]"));
    let out = run(&["ladder", fixed.to_str().unwrap(), "--results", results.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("[grid] aspect_ratio"), "{}", stderr(&out));
    for (flag, value) in [("--step", "1"), ("--step", "nan"), ("--rungs", "0")] {
        let out = run(&["ladder", fixed.to_str().unwrap(), flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{}", stderr(&out));
    }
    // A top rung beyond any budget: refused before rung 1 trains (it trained, then failed on an
    // infinite budget it had computed itself).
    let centred = write(&dir, "c.toml", &ladder_config("centred", "flops = [3e8, 1e9]", CENTRED));
    for args in [["--step", "1e300", "--rungs", "3"], ["--step", "4", "--rungs", "1000000"]] {
        let mut all = vec!["ladder", centred.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"];
        all.extend(args);
        let out = run(&all);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("top rung") && err.contains("--rungs") && err.lines().count() == 1, "{err}");
    }
    assert!(!results.exists(), "nothing written for a refused ladder");
    std::fs::remove_dir_all(&dir).unwrap();
}
