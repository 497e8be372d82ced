//! The bad-input table: each case drives the real binary with one bad input and checks
//! a non-zero exit, exactly one line on stderr naming the file and the key or line, no panic, and
//! a results directory byte-for-byte as it was. One `Case` per row, one test per case; the disk
//! that fills up mid-run is the test after the table (it must write, then keep what it wrote).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;

/// The sweep every config case edits: one tiny run on the synthetic language.
const SWEEP: &str = r#"name = "bad"
device = "cpu"

[data]
kind = "synthetic"
vocab_size = 256
n_quanta = 512

[model]
seq_len = 32
head_dim = 16

[grid]
n_layers = [1]
d_model = [32]

[budget]
tokens = [2560]

[train]
batch_size = 8
lr = 1e-2
eval_tokens = 2048
"#;

/// The config file a case hands to the binary as `{config}`.
enum Config {
    /// The sweep above with each (from, to) replaced once.
    Sweep(&'static [(&'static str, &'static str)]),
    /// `common::tiny_run_config("bad", "")` with each (from, to) replaced once.
    Run(&'static [(&'static str, &'static str)]),
    Bytes(&'static [u8]),
    Missing,
    Directory,
}

/// What the results directory (`{results}`) holds before the command runs.
enum Before {
    Nothing,
    /// A plain file where the directory should be.
    File,
    /// A directory nobody may write to (a read-only tmpfs when root, mode 0555 otherwise).
    ReadOnly,
    /// `bad/` already holds a plan.json with this text (another config's, or garbage).
    Plan(&'static str),
}

struct Case {
    /// `{config}`, `{results}` and `{dir}` (the scratch directory) are substituted.
    args: &'static [&'static str],
    config: Config,
    before: Before,
    /// Pieces the error line must contain: the file and the key or line.
    expect: &'static [&'static str],
}

const SWEEP_ARGS: &[&str] = &["sweep", "{config}", "--results", "{results}", "--quiet"];
const TRAIN_ARGS: &[&str] = &["train", "{config}", "--results", "{results}", "--quiet"];

fn sweep(edits: &'static [(&'static str, &'static str)], expect: &'static [&'static str]) -> Case {
    Case { args: SWEEP_ARGS, config: Config::Sweep(edits), before: Before::Nothing, expect }
}

fn train(edits: &'static [(&'static str, &'static str)], expect: &'static [&'static str]) -> Case {
    Case { args: TRAIN_ARGS, config: Config::Run(edits), before: Before::Nothing, expect }
}

fn with_before(before: Before, expect: &'static [&'static str]) -> Case {
    Case { args: SWEEP_ARGS, config: Config::Sweep(&[]), before, expect }
}

fn command(args: &'static [&'static str], config: Config, expect: &'static [&'static str]) -> Case {
    Case { args, config, before: Before::Nothing, expect }
}

const OTHER_PLAN: &str =
    r#"{"format_version": 1, "sweep": "bad", "config_hash": "0123456789abcdef", "runs": [], "warnings": []}"#;

macro_rules! bad_inputs {
    ($($(#[$attr:meta])* $name:ident: $case:expr;)*) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                check(stringify!($name), $case);
            }
        )*
        /// Every case of the table, by name.
        const CASES: &[&str] = &[$(stringify!($name)),*];
    };
}

bad_inputs! {
    // Config files that are not configs.
    empty_config: command(SWEEP_ARGS, Config::Bytes(b""), &["config.toml", "missing field `name`"]);
    json_instead_of_toml: command(SWEEP_ARGS, Config::Bytes(b"{\"name\": \"bad\"}\n"), &["config.toml", "line 1"]);
    binary_config: command(SWEEP_ARGS, Config::Bytes(b"\x00\xff\xfe\x01garbage"), &["config.toml", "UTF-8"]);
    missing_config: command(SWEEP_ARGS, Config::Missing, &["config.toml", "No such file"]);
    config_is_a_directory: command(SWEEP_ARGS, Config::Directory, &["config.toml", "directory"]);
    duplicate_key: sweep(&[("lr = 1e-2", "lr = 1e-2\nlr = 2e-2")], &["config.toml", "line 23", "duplicate key"]);
    // Unknown keys and wrong types: the key and its line are named.
    unknown_top_level_key: sweep(&[("device = \"cpu\"", "device = \"cpu\"\nnmae = \"typo\"")], &["config.toml", "line 3", "nmae"]);
    unknown_model_key: sweep(&[("head_dim = 16", "head_dim = 16\nhead_dims = 4")], &["config.toml", "line 12", "head_dims"]);
    unknown_train_key_in_a_run_config: train(&[("lr = 1e-2", "lr = 1e-2\nlearning_rate = 3")], &["config.toml", "learning_rate"]);
    unknown_data_kind: sweep(&[("kind = \"synthetic\"", "kind = \"parquet\"")], &["config.toml", "line 5", "parquet"]);
    string_for_a_number: sweep(&[("seq_len = 32", "seq_len = \"32\"")], &["config.toml", "line 10", "seq_len"]);
    number_for_a_list: sweep(&[("device = \"cpu\"", "device = \"cpu\"\nseeds = 3")], &["config.toml", "line 3", "seeds"]);
    string_for_a_bool: sweep(&[("head_dim = 16", "head_dim = 16\ntie_embeddings = \"yes\"")], &["config.toml", "line 12", "tie_embeddings"]);
    // Values that are impossible.
    d_model_not_divisible_by_n_heads: train(&[("d_model = 32", "d_model = 30"), ("n_heads = 2", "n_heads = 4")], &["config.toml", "model.d_model = 30", "n_heads = 4"]);
    d_model_not_a_multiple_of_head_dim: sweep(&[("d_model = [32]", "d_model = [40]")], &["config.toml", "grid.d_model = 40", "head_dim"]);
    zero_token_budget: sweep(&[("tokens = [2560]", "tokens = [0]")], &["config.toml", "budget.tokens"]);
    negative_token_budget: sweep(&[("tokens = [2560]", "tokens = [-2560]")], &["config.toml", "line 18", "tokens"]);
    negative_flop_budget: sweep(&[("tokens = [2560]", "flops = [-1e12]")], &["config.toml", "budget.flops"]);
    zero_run_tokens: train(&[("tokens = 40960", "tokens = 0")], &["config.toml", "train.tokens must be positive"]);
    run_tokens_less_than_one_step: train(&[("tokens = 40960", "tokens = 10")], &["config.toml", "train.tokens = 10", "one step"]);
    flop_budget_less_than_one_step: sweep(&[("tokens = [2560]", "flops = [5e6]")], &["config.toml", "budget", "no run fits"]);
    flop_budget_less_than_one_token: sweep(&[("tokens = [2560]", "flops = [1e3]")], &["config.toml", "budget", "no run fits"]);
    flop_budget_beyond_u64_tokens: sweep(&[("tokens = [2560]", "flops = [3e34]")], &["config.toml", "budget.flops"]);
    negative_learning_rate: sweep(&[("lr = 1e-2", "lr = -1e-2")], &["config.toml", "train.lr"]);
    zero_eval_tokens: sweep(&[("eval_tokens = 2048", "eval_tokens = 0")], &["config.toml", "train.eval_tokens"]);
    no_seeds: sweep(&[("device = \"cpu\"", "device = \"cpu\"\nseeds = []")], &["config.toml", "seeds"]);
    two_kinds_of_budget: sweep(&[("tokens = [2560]", "tokens = [2560]\nflops = [1e12]")], &["config.toml", "budget: give exactly one"]);
    vocabulary_too_small: sweep(&[("vocab_size = 256", "vocab_size = 3")], &["config.toml", "vocab_size"]);
    // TOML allows inf and nan; no setting means anything at either, and JSON records cannot hold them.
    infinite_grad_clip: sweep(&[("eval_tokens = 2048", "eval_tokens = 2048\n[train.optimizer]\ngrad_clip = inf")], &["config.toml", "train.optimizer.grad_clip = inf", "finite"]);
    infinite_spike_factor_in_a_run_config: train(&[("eval_tokens = 4096", "eval_tokens = 4096\n[train.divergence]\nspike_factor = inf")], &["config.toml", "train.divergence.spike_factor = inf", "finite"]);
    nan_in_a_budget_list: sweep(&[("tokens = [2560]", "tokens_per_param = [20.0, nan]")], &["config.toml", "budget.tokens_per_param[1] = NaN"]);
    run_tokens_just_under_one_step: train(&[("tokens = 40960", "tokens = 255")], &["config.toml", "train.tokens = 255", "one step of batch_size × seq_len = 256"]);
    unique_tokens_less_than_one_sequence: sweep(&[("tokens = [2560]", "tokens = [2560]\nunique_tokens = [10]")], &["config.toml", "budget.unique_tokens: 10", "model.seq_len = 32"]);
    run_unique_tokens_less_than_one_sequence: train(&[("tokens = 40960", "tokens = 40960\nunique_tokens = 10")], &["config.toml", "train.unique_tokens = 10", "model.seq_len = 32"]);
    token_file_less_than_one_sequence: sweep(&[("kind = \"synthetic\"\nvocab_size = 256\nn_quanta = 512", "kind = \"tokens\"\ntrain = \"tiny.bin\"\nvalidation = \"validation.bin\"\ndtype = \"u16\"\nvocab_size = 256")], &["config.toml", "training split holds 10 tokens", "seq_len"]);
    unknown_schedule: sweep(&[("eval_tokens = 2048", "eval_tokens = 2048\n[train.schedule]\nkind = \"sawtooth\"")], &["config.toml", "sawtooth"]);
    // Devices.
    unknown_device: sweep(&[("device = \"cpu\"", "device = \"tpu\"")], &["config.toml", "device = \"tpu\""]);
    unknown_precision: sweep(&[("device = \"cpu\"", "device = \"cpu\"\nprecision = \"fp8\"")], &["config.toml", "precision = \"fp8\""]);
    bf16_on_the_cpu: sweep(&[("device = \"cpu\"", "device = \"cpu\"\nprecision = \"bf16\"")], &["device \"cpu\"", "bf16"]);
    #[cfg_attr(feature = "cuda", ignore = "a CUDA build has cuda devices")]
    cuda_device_in_a_cpu_build: sweep(&[("device = \"cpu\"", "device = \"cuda:0\"")], &["device \"cuda:0\"", "cuda"]);
    #[cfg_attr(feature = "metal", ignore = "a Metal build has a metal device")]
    metal_device_in_a_build_without_metal: sweep(&[("device = \"cpu\"", "device = \"metal\"")], &["device \"metal\"", "metal"]);
    // Data.
    data_path_that_does_not_exist: sweep(&[("kind = \"synthetic\"\nvocab_size = 256\nn_quanta = 512", "kind = \"text\"\nfiles = [\"no-such-corpus/*.txt\"]\nvocab_size = 300")], &["no-such-corpus"]);
    corpus_too_small_for_one_batch: sweep(&[("kind = \"synthetic\"\nvocab_size = 256\nn_quanta = 512", "kind = \"text\"\nfiles = [\"tiny.txt\"]\nvocab_size = 260")], &["tiny.txt"]);
    // Paths: names cannot reach outside the results directory.
    sweep_name_with_dot_dot: sweep(&[("name = \"bad\"", "name = \"../escape\"")], &["config.toml", "name", "../escape"]);
    absolute_sweep_name: sweep(&[("name = \"bad\"", "name = \"/tmp/escape\"")], &["config.toml", "name", "/tmp/escape"]);
    run_name_with_dot_dot: train(&[("name = \"bad\"", "name = \"../../escape\"")], &["config.toml", "name", "../../escape"]);
    // The results directory.
    results_is_a_file: with_before(Before::File, &["results", "not a directory"]);
    results_not_writable: with_before(Before::ReadOnly, &["results/bad"]);
    results_of_another_config: with_before(Before::Plan(OTHER_PLAN), &["results/bad", "belongs to another config", "0123456789ab"]);
    corrupt_plan_json: with_before(Before::Plan("{\"format_version\": 1,\n garbage"), &["plan.json", "line 2"]);
    results_below_a_file: command(&["sweep", "{config}", "--results", "{dir}/config.toml/results", "--quiet"], Config::Sweep(&[]), &["config.toml/results", "Not a directory"]);
    // Command-line values.
    worker_out_of_range: command(&["sweep", "{config}", "--results", "{results}", "--worker", "2/2"], Config::Sweep(&[]), &["--worker", "2/2"]);
    negative_stale_after: command(&["sweep", "{config}", "--results", "{results}", "--stale-after=-1"], Config::Sweep(&[]), &["--stale-after"]);
    slurm_zero_workers: command(&["slurm", "{config}", "--results", "{results}", "--workers", "0"], Config::Sweep(&[]), &["--workers"]);
    slurm_partition_injection: command(&["slurm", "{config}", "--results", "{results}", "--partition", "a\n#SBATCH --uid=0"], Config::Sweep(&[]), &["--partition"]);
    fit_a_missing_file: command(&["fit", "{dir}/missing.csv"], Config::Sweep(&[]), &["missing.csv"]);
    fit_a_csv_without_a_loss_column: command(&["fit", "{config}"], Config::Bytes(b"N,D\n1e6,2e7\n"), &["config.toml", "loss"]);
    plot_a_directory_without_records: command(&["plot", "{dir}"], Config::Sweep(&[]), &["no summary.csv"]);
    rebuild_summary_without_runs: command(&["summary", "{dir}"], Config::Sweep(&[]), &["no runs/ folder"]);
}

#[test]
fn the_table_has_at_least_30_cases() {
    assert!(CASES.len() >= 30, "{} cases", CASES.len());
}

#[test]
fn a_target_flops_that_is_not_a_positive_number_is_a_usage_error() {
    // Zero and NaN were refused with exit 1 and infinity with exit 2: every bad value is one
    // usage error naming the flag.
    let dir = scratch("bad-target-flops");
    let csv = write(&dir, "points.csv", "N,D,C,loss\n1e6,2e7,1.2e14,3.0\n2e6,4e7,4.8e14,2.9\n4e6,8e7,1.92e15,2.8\n");
    for value in ["0", "-1e12", "nan", "inf", "1e400"] {
        let flag = format!("--target-flops={value}");
        let out = run(&["fit", csv.to_str().unwrap(), "--bootstrap", "0", &flag]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--target-flops {value}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "--target-flops {value}: {err}");
        assert!(err.contains("target-flops") && err.contains("positive"), "--target-flops {value}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flag_values_out_of_range_are_usage_errors_before_anything_runs() {
    // Each was exit 1, a panic (a Duration from 1e20 seconds), a sweep that recorded every run
    // failed (--stale-after 0.09: heartbeats cannot come twice within it), or an abort
    // allocating petabytes (bench).
    let dir = scratch("bad-flag-values");
    let config = write(&dir, "config.toml", SWEEP);
    let (c, results) = (config.to_str().unwrap(), dir.join("results"));
    let r = results.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["sweep", c, "--results", r, "--stale-after", "0"], "--stale-after"),
        (&["sweep", c, "--results", r, "--stale-after", "0.09"], "--stale-after"),
        (&["sweep", c, "--results", r, "--stale-after", "1e20"], "--stale-after"),
        (&["sweep", c, "--results", r, "--stale-after", "inf"], "--stale-after"),
        (&["slurm", c, "--results", r, "--stale-after", "inf"], "--stale-after"),
        (&["status", r, "--stale-after", "1e20"], "--stale-after"),
        (&["status", r, "--watch", "--interval", "inf"], "--interval"),
        (&["plan", c, "--assume-flops", "0"], "--assume-flops"),
        (&["plan", c, "--assume-flops", "1e-300"], "--assume-flops"),
        (&["plan", c, "--assume-flops", "5e10", "--no-measure"], "--no-measure"),
        (&["bench", "--device", "gpu"], "--device"),
        (&["bench", "--precision", "fp8"], "--precision"),
        (&["bench", "--device", "cpu", "--batch-size", "18446744073709551615"], "--batch-size"),
        (
            &["bench", "--device", "cpu", "--d-model", "65536", "--n-heads", "256", "--n-layers", "100000"],
            "needs about",
        ),
        (
            &["bench", "--ops", "--device", "cpu", "--d-model", "65536", "--n-heads", "256", "--n-layers", "100000"],
            "needs about",
        ),
    ];
    for (args, named) in cases {
        let out = run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {named:?} not in {err}");
        assert!(!results.exists(), "{args:?} wrote {}", results.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reader_that_closes_the_pipe_ends_fit_quietly_and_keeps_fit_json() {
    // `sweeplaw fit … | head -1` panicked in println! (exit 101, a backtrace on stderr).
    let dir = scratch("bad-closed-pipe");
    let csv = write(&dir, "points.csv", "N,D,C,loss\n1e6,2e7,1.2e14,3.0\n2e6,4e7,4.8e14,2.9\n4e6,8e7,1.92e15,2.8\n");
    let out_json = dir.join("fit.json");
    let mut child = sweeplaw()
        .args(["fit", csv.to_str().unwrap(), "--bootstrap", "0", "--out", out_json.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before the first line
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(out_json.exists(), "fit.json is written before the table is printed");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn check(name: &str, case: Case) {
    let dir = scratch(&format!("bad-{name}"));
    let config = dir.join("config.toml");
    write_config(&config, &case.config);
    let results = dir.join("results");
    let Some(_mount) = prepare(&results, &case.before) else {
        let why = "cannot make a read-only directory here (root without mount permission)";
        sweeplaw::requirements::skip("mount", name, why);
        return;
    };
    let before = snapshot(&results);
    let args: Vec<String> = case
        .args
        .iter()
        .map(|a| {
            a.replace("{config}", &config.display().to_string())
                .replace("{results}", &results.display().to_string())
                .replace("{dir}", &dir.display().to_string())
        })
        .collect();
    let out = sweeplaw().args(&args).output().expect("the sweeplaw binary runs");
    let err = stderr(&out);
    assert!(!out.status.success(), "{name}: exit 0; stdout {}", stdout(&out));
    assert!(!err.contains("panicked"), "{name}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: one line on stderr, got {err:?}");
    assert!(lines[0].starts_with("error"), "{name}: {err}");
    for piece in case.expect {
        assert!(lines[0].contains(piece), "{name}: {piece:?} not in {:?}", lines[0]);
    }
    assert_eq!(snapshot(&results), before, "{name}: the results directory changed");
    drop(_mount);
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_config(path: &Path, config: &Config) {
    let edit = |base: String, edits: &[(&str, &str)]| {
        edits.iter().fold(base, |text, (from, to)| {
            assert!(text.contains(from), "the base config has no {from:?}");
            text.replacen(from, to, 1)
        })
    };
    match config {
        Config::Sweep(edits) => std::fs::write(path, edit(SWEEP.to_string(), edits)).unwrap(),
        Config::Run(edits) => std::fs::write(path, edit(tiny_run_config("bad", ""), edits)).unwrap(),
        Config::Bytes(bytes) => std::fs::write(path, bytes).unwrap(),
        Config::Missing => {}
        Config::Directory => std::fs::create_dir_all(path).unwrap(),
    }
    if let Some(dir) = path.parent() {
        std::fs::write(dir.join("tiny.txt"), "far too small").unwrap();
        // Token files (u16): a training file of 10 tokens, less than one sequence; a validation
        // file large enough for the evaluation.
        let tokens = |n: u16| (0..n).flat_map(|t| (t % 200).to_le_bytes()).collect::<Vec<u8>>();
        std::fs::write(dir.join("tiny.bin"), tokens(10)).unwrap();
        std::fs::write(dir.join("validation.bin"), tokens(4096)).unwrap();
    }
}

/// Sets up the results directory; `None` when this machine cannot (the case is skipped).
fn prepare(results: &Path, before: &Before) -> Option<Mount> {
    match before {
        Before::Nothing => {}
        Before::File => std::fs::write(results, "not a directory").unwrap(),
        Before::ReadOnly => return read_only_dir(results),
        Before::Plan(text) => {
            std::fs::create_dir_all(results.join("bad/runs")).unwrap();
            std::fs::write(results.join("bad/plan.json"), text).unwrap();
        }
    }
    Some(Mount(None))
}

/// A read-only tmpfs mounted on a path, unmounted on drop.
struct Mount(Option<PathBuf>);

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::process::Command::new("umount").arg(path).status();
        }
    }
}

fn read_only_dir(path: &Path) -> Option<Mount> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).unwrap();
    if !is_root() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555)).unwrap();
        return Some(Mount(None));
    }
    // Root writes through permission bits; only a read-only filesystem stops it.
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"])
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    mounted.then(|| Mount(Some(path.to_path_buf())))
}

pub fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Every file and directory under `root` with its bytes (None for directories); empty if absent.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            found.insert(path.clone(), None);
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else {
            found.insert(path.clone(), Some(std::fs::read(&path).unwrap()));
        }
    }
    found
}

/// A tmpfs of `size` mounted on `path` (root only), unmounted on drop; None where it cannot be.
fn small_tmpfs(path: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(path).unwrap();
    let mounted = is_root()
        && std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    mounted.then(|| Mount(Some(path.to_path_buf())))
}

#[test]
fn a_disk_that_fills_up_mid_run_stops_with_a_clear_error_and_keeps_earlier_records() {
    let dir = scratch("bad-disk-full");
    let results = dir.join("results");
    let Some(_mount) = small_tmpfs(&results, "128k") else {
        let why = "a full disk is simulated with a 128k tmpfs, and mounting one needs root here";
        sweeplaw::requirements::skip("mount", "the full-disk test", why);
        return;
    };
    // Run 1 (10 steps) fits; run 2's metrics.csv (1600 rows) does not. No checkpoints.
    let text = SWEEP
        .replace("tokens = [2560]", "tokens = [2560, 409600]")
        .replace("eval_tokens = 2048", "eval_tokens = 2048\neval_every_tokens = 102400\ncheckpoint_every_tokens = 0");
    let config = write(&dir, "config.toml", &text);
    let args = ["sweep", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"];
    let out = run(&args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("No space left on device") && errors[0].contains("results/bad/runs/"), "{err}");
    assert!(errors[0].contains("L1-d32-D409600-s0"), "the run is named: {err}");
    let first = results.join("bad/runs/L1-d32-D2560-s0/run.json");
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&first).unwrap()).unwrap();
    assert_eq!(record["status"], "done", "the run finished before the disk filled keeps its record");
    let second: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("bad/runs/L1-d32-D409600-s0/run.json")).unwrap())
            .unwrap();
    assert_eq!(second["status"], "running", "the interrupted run is not marked failed");
    // Free space (a larger filesystem) and rerun: the sweep completes.
    let grown = std::process::Command::new("mount").args(["-o", "remount,size=8m"]).arg(&results).status();
    assert!(grown.is_ok_and(|s| s.success()));
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("trained 1, already done 1"), "{}", stdout(&out));
    drop(_mount);
    let _ = std::fs::remove_dir_all(&dir);
}
