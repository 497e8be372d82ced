//! `sweeplaw train` and `sweeplaw bench` end to end: records, determinism, bad input.

use crate::common::*;

#[test]
fn train_writes_records_and_learns_the_synthetic_language() {
    let dir = scratch("train-records");
    let config = write(&dir, "run.toml", &tiny_run_config("tiny", ""));
    let results = dir.join("results");
    let out = run(&["train", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = results.join("tiny/runs/tiny");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["status"], "done");
    assert_eq!(record["ops"], "fused");
    assert_eq!(record["counts"]["params_nonembedding"], 12 * 32 * 32 + 2 * 32 + 32);
    let val = record["result"]["val_loss"].as_f64().unwrap();
    let floor = record["data"]["true_entropy"].as_f64().unwrap();
    let unigram = record["data"]["unigram_entropy"].as_f64().unwrap();
    assert!(val > floor, "validation loss {val} must stay above the true entropy {floor}");
    assert!(val < unigram - 0.3, "validation loss {val} must fall well below the unigram entropy {unigram}");

    let metrics = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("step,tokens,flops,lr,train_loss,val_loss,grad_norm,elapsed_s,tokens_per_s\n"));
    assert_eq!(metrics.lines().count(), 1 + 160, "one row per step");
    let summary = std::fs::read_to_string(results.join("tiny/summary.csv")).unwrap();
    assert!(summary.starts_with("run_id,status,n_layers,d_model,n_heads,seq_len,vocab_size,params_nonembedding,params_total,params_matmul,tokens,unique_tokens,flops,val_loss,train_loss,wall_s,seed"));
    assert!(summary.lines().nth(1).unwrap().starts_with("tiny,done,1,32,2,32,"));
    assert!(results.join("tiny/sweep.toml").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn same_seed_gives_identical_losses_on_the_cpu() {
    let dir = scratch("same-seed");
    let config = write(&dir, "run.toml", &tiny_run_config("seeded", "eval_every_tokens = 8192"));
    let mut all = Vec::new();
    for r in ["a", "b"] {
        let results = dir.join(r);
        let out = run(&["train", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
        assert!(out.status.success(), "{}", stderr(&out));
        all.push(losses(&results.join("seeded/runs/seeded/metrics.csv")));
    }
    assert_eq!(all[0], all[1]);
    assert!(all[0].iter().filter(|(_, v)| !v.is_empty()).count() >= 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each bad config exits non-zero with a one-line error naming the file and the key.
#[test]
fn bad_configs_are_clear_errors_naming_file_and_key() {
    let dir = scratch("bad-configs");
    let good = tiny_run_config("bad", "");
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("unknown_key.toml", good.replace("lr = 1e-2", "lr = 1e-2\nlearning_rat = 3"), &["learning_rat"]),
        ("indivisible.toml", good.replace("n_heads = 2", "n_heads = 3"), &["d_model", "n_heads"]),
        ("zero_budget.toml", good.replace("tokens = 40960", "tokens = 0"), &["train.tokens"]),
        ("tiny_budget.toml", good.replace("tokens = 40960", "tokens = 10"), &["train.tokens", "less than one step"]),
        ("device.toml", good.replace("device = \"cpu\"", "device = \"tpu:0\""), &["device", "tpu:0"]),
        ("wrong_type.toml", good.replace("batch_size = 8", "batch_size = \"eight\""), &["batch_size"]),
        (
            "bad_data.toml",
            good.replace("kind = \"synthetic\"", "kind = \"synthetic\"\nvocab_sise = 10"),
            &["vocab_sise"],
        ),
        ("not_toml.toml", "this is not toml [".to_string(), &["not_toml.toml"]),
    ];
    for (name, text, needles) in cases {
        let path = write(&dir, name, &text);
        let out = run(&["train", path.to_str().unwrap(), "--results", dir.join("r").to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(name), "{name}: error does not name the file: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: error does not name {n:?}: {err}");
        }
        assert_eq!(err.trim().lines().count(), 1, "{name}: error is not one line: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(!dir.join("r").join("bad").exists(), "{name}: wrote records for a bad config");
    }
    let out = run(&["train", dir.join("missing.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_prints_json_last() {
    let out = run(&[
        "bench",
        "--d-model",
        "32",
        "--n-layers",
        "1",
        "--n-heads",
        "2",
        "--seq-len",
        "32",
        "--vocab-size",
        "64",
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let last: serde_json::Value = serde_json::from_str(text.trim().lines().last().unwrap()).unwrap();
    assert!(last["tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(last["model_flops_per_s"].as_f64().unwrap() > 0.0);
    let out = run(&["bench", "--device", "cuda:0", "--steps", "1"]);
    if !cfg!(feature = "cuda") {
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("without CUDA"), "{}", stderr(&out));
    }
}

/// A small bench shape on the CPU, plus `extra` arguments.
fn small_bench(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = "bench --d-model 32 --n-layers 1 --n-heads 2 --seq-len 32 --vocab-size 64 --batch-size 2 --steps 1 --warmup 0 --device cpu --json"
        .split(' ')
        .map(String::from)
        .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn last_json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(stdout(out).trim().lines().last().unwrap()).unwrap()
}

#[test]
fn bench_times_the_fused_or_the_composite_ops() {
    let fused = last_json(&sweeplaw().args(small_bench(&[])).output().unwrap());
    assert_eq!(fused["ops"], "fused");
    let composite = last_json(&sweeplaw().args(small_bench(&["--composite"])).output().unwrap());
    assert_eq!(composite["ops"], "composite");
    let by_env = last_json(&sweeplaw().args(small_bench(&[])).env("SWEEPLAW_OPS", "composite").output().unwrap());
    assert_eq!(by_env["ops"], "composite");
    let off = sweeplaw().args(small_bench(&[])).env("SWEEPLAW_CUDA_KERNELS_OFF", "flash_attention, adamw").output();
    assert_eq!(last_json(&off.unwrap())["ops"], "fused", "the CPU has no CUDA kernels to turn off");
    let unknown = sweeplaw().args(small_bench(&[])).env("SWEEPLAW_CUDA_KERNELS_OFF", "flash").output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("names \"flash\", not a kernel; kernels: rms_norm, rope, flash_attention"));
    let typo = sweeplaw().args(small_bench(&[])).env("SWEEPLAW_OPS", "fast").output().unwrap();
    assert_eq!(typo.status.code(), Some(2));
    assert!(stderr(&typo).contains("SWEEPLAW_OPS=\"fast\" is not a choice"), "{}", stderr(&typo));
}

#[test]
fn bench_ops_times_each_op_fused_and_composite() {
    let timings = last_json(&sweeplaw().args(small_bench(&["--ops"])).output().unwrap());
    let ops: Vec<&str> = timings.as_array().unwrap().iter().map(|t| t["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["rms_norm", "rope", "causal_attention", "gelu", "cross_entropy", "linear (mlp up)"]);
    for t in timings.as_array().unwrap() {
        assert_eq!(t["fused_path"], true, "{t}");
        assert!(t["fused_ms"].as_f64().unwrap() > 0.0 && t["composite_ms"].as_f64().unwrap() > 0.0, "{t}");
    }
}

#[test]
fn the_record_says_which_ops_trained_the_run() {
    let dir = scratch("ops-record");
    let config = write(&dir, "run.toml", &tiny_run_config("composite", "").replace("tokens = 40960", "tokens = 8192"));
    let results = dir.join("results");
    let out = sweeplaw()
        .args(["train", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"])
        .env("SWEEPLAW_OPS", "composite")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("composite/runs/composite/run.json")).unwrap())
            .unwrap();
    assert_eq!(record["ops"], "composite");
    let report = run(&["report", results.join("composite").to_str().unwrap()]);
    assert!(report.status.success(), "{}", stderr(&report));
    let markdown = std::fs::read_to_string(results.join("composite/report.md")).unwrap();
    assert!(markdown.contains("ops: composite"), "{markdown}");
    std::fs::remove_dir_all(&dir).unwrap();
}
