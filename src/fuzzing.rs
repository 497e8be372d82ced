//! Entry points of the cargo-fuzz targets in `fuzz/` (see its README line): each feeds arbitrary
//! bytes to one family of parsers and must return, never panic. They also run as ordinary unit
//! tests over a few hand-written inputs, so a fuzz target that no longer builds shows up in
//! `cargo test`.

use std::path::{Path, PathBuf};

use crate::config::{parse_toml, RunConfig, SweepConfig};

/// Grids larger than this are validated but not expanded (the plan would only be slow, not wrong).
const MAX_FUZZ_SIZES: usize = 256;

/// The config parser: `bytes` as a sweep config (parsed, validated, planned) and as a run config
/// (parsed, validated into a spec).
pub fn config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let path = Path::new("fuzz.toml");
    if let Ok(sweep) = parse_toml::<SweepConfig>(path, text) {
        let sizes = sweep.grid.n_layers.len() * sweep.grid.d_model.as_ref().map_or(1, Vec::len);
        let b = &sweep.budget;
        let budgets = [
            b.tokens.as_ref().map(Vec::len),
            b.flops.as_ref().map(Vec::len),
            b.tokens_per_param.as_ref().map(Vec::len),
        ];
        let budgets = budgets.iter().flatten().sum::<usize>().max(1);
        if sweep.validate().is_ok() && sizes * budgets * sweep.seeds.len() <= MAX_FUZZ_SIZES {
            let _ = crate::plan::expand(&sweep);
        }
    }
    if let Ok(run) = parse_toml::<RunConfig>(path, text) {
        let _ = run.to_spec();
    }
}

/// The records readers: `bytes` as run.json (strictly, as the runner reads it, and leniently,
/// as the figures do), as fit.json, as metrics.csv and as summary.csv.
pub fn records(bytes: &[u8]) {
    let path = Path::new("fuzz-record");
    let _ = crate::records::RunRecord::parse(path, bytes);
    let _ = crate::records::RunInfo::parse(path, bytes, &mut Vec::new());
    let _ = crate::records::fit::parse_fit(path, bytes);
    let _ = crate::records::parse_metrics(path, bytes);
    let _ = crate::records::parse_summary(path, bytes);
}

/// The fit input reader: `bytes` as the CSV given to `sweeplaw fit` (a summary.csv or any CSV of
/// N, D, loss), written to a scratch file under `dir` because the reader takes a path.
pub fn fit_input(dir: &Path, bytes: &[u8]) {
    let path = scratch_file(dir);
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    let options = crate::fit::FitOptions { bootstrap: 0, ..crate::fit::FitOptions::default() };
    let _ = crate::fit::load_points(&path, &options);
    let _ = std::fs::remove_file(&path);
}

/// A checkpoint's state: `bytes` split at their first two NUL bytes into state.json's text,
/// model.safetensors and optimizer.safetensors, checked as a resume would check them (state
/// parsed, checksums and the weight file's step compared, the tensors decoded).
pub fn checkpoint_state(bytes: &[u8]) {
    let mut parts = bytes.splitn(3, |b| *b == 0);
    let (state, model, optimizer) = (parts.next().unwrap_or_default(), parts.next(), parts.next());
    let Ok(state) = std::str::from_utf8(state) else { return };
    let dir = Path::new("fuzz-checkpoint");
    let model = model.unwrap_or_default();
    let optimizer_sha = crate::train::checkpoint::checksum(optimizer.unwrap_or_default());
    let _ = crate::train::checkpoint::parse_state(&dir.join("state.json"), state);
    let _ = crate::train::checkpoint::verify_bytes(dir, state, model, &optimizer_sha);
    let _ = candle_core::safetensors::load_buffer(model, &candle_core::Device::Cpu);
}

/// A sweep directory's plan.json: `bytes` parsed as the sweep reads it, then rendered as
/// `sweeplaw plan` prints it.
pub fn plan_json(bytes: &[u8]) {
    if let Ok(plan) = crate::sweep::store::parse_plan(Path::new("fuzz-plan.json"), bytes) {
        if plan.runs.len() <= MAX_FUZZ_SIZES {
            let _ = crate::sweep::estimate::render(&plan, None);
        }
    }
}

/// `dir/fit-input-<pid>.csv`: one scratch file per fuzzing process.
fn scratch_file(dir: &Path) -> PathBuf {
    dir.join(format!("fit-input-{}.csv", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: [&[u8]; 6] = [
        b"",
        b"\xff\xfe",
        b"name = \"x\"\n[model]\nd_model = 18446744073709551615\n",
        b"run_id,status,params_nonembedding,tokens,val_loss\na,done,1e6,2e7,3.1\nb,done,",
        b"step,tokens,flops,lr,train_loss,val_loss,grad_norm,elapsed_s,tokens_per_s\n1,2,3,4,5,,7,8,9\n1,",
        b"{\"format_version\": 1, \"run_id\": \"a\"",
    ];

    #[test]
    fn the_fuzz_entry_points_return_on_hand_written_inputs() {
        let dir = std::env::temp_dir().join(format!("sweeplaw-fuzzing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for seed in SEEDS {
            config(seed);
            records(seed);
            fit_input(&dir, seed);
            checkpoint_state(seed);
            plan_json(seed);
        }
        checkpoint_state(
            b"{\"format_version\":2,\"step\":3,\"tokens\":96,\"elapsed_s\":0.5}\0\x08\0\0\0\0\0\0\0{}      \0",
        );
        plan_json(br#"{"format_version":1,"sweep":"s","config_hash":"h","runs":[],"warnings":[]}"#);
        config(include_bytes!("../configs/smoke.toml"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
