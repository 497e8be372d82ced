//! Whether a run fits the device's memory, estimated before anything is written: a model that
//! cannot be allocated would otherwise abort the process part-way through writing its records.
//!
//! The estimate counts what training holds at once (docs/sweep-design.md "Memory"): f32 master
//! weights, their gradients and AdamW's two moments (16 bytes a parameter), a bf16 copy of the
//! weights when matmuls run in bf16, and the activations kept for the backward pass at the run's
//! batch: per layer about 12·d + 2·h values a token (norms, q/k/v, rotated q/k, attention output,
//! projections, residuals, the MLP's hidden pre- and post-activation) plus the B·H·T·T attention
//! scores and their softmax that the composite attention path materialises, and the B·T·V logits
//! with their log-softmax and gradient, 4 bytes each, twice (the backward pass holds each kept
//! activation's gradient beside it). Measured against the peak resident memory of one run
//! (docs/sweep-design.md "Memory"): 4.56 GiB estimated, 4.69 GiB used. It is meant to refuse what
//! cannot fit, not to squeeze the last gigabyte.

use crate::model::ModelShape;
use crate::plan::RunSpec;

/// Bytes a run needs at its peak, by the estimate above.
pub fn estimate_bytes(spec: &RunSpec) -> f64 {
    let bf16_matmuls = spec.precision == "bf16" || (spec.precision == "auto" && spec.device.starts_with("cuda"));
    estimate_shape_bytes(&spec.shape, spec.batch_size, bf16_matmuls)
}

/// Bytes training `shape` at `batch_size` needs at its peak, by the estimate above.
pub fn estimate_shape_bytes(s: &ModelShape, batch_size: usize, bf16_matmuls: bool) -> f64 {
    let params = s.params_total() as f64;
    let bf16_copy = if bf16_matmuls { 2.0 * params } else { 0.0 };
    let state = 16.0 * params + bf16_copy;
    let (b, t, d, h, heads, v) = (
        batch_size as f64,
        s.seq_len as f64,
        s.d_model as f64,
        s.mlp_hidden() as f64,
        s.n_heads as f64,
        s.vocab_size as f64,
    );
    let per_layer = b * t * (12.0 * d + 2.0 * h) + 2.0 * b * heads * t * t;
    let head = 3.0 * b * t * v + 2.0 * b * t * d;
    // ×2: during the backward pass each kept activation's gradient lives beside it.
    state + 2.0 * 4.0 * (s.n_layers as f64 * per_layer + head)
}

/// The memory a device offers, when it can be told without opening the device: the machine's RAM
/// (MemTotal of /proc/meminfo) for the CPU. None for GPUs and where /proc/meminfo is missing.
pub fn available_bytes(device: &str) -> Option<(String, f64)> {
    let cpu = device == "cpu" || (device == "auto" && !cfg!(any(feature = "cuda", feature = "metal")));
    if !cpu {
        return None;
    }
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 =
        text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(("system RAM (MemTotal in /proc/meminfo)".into(), kib * 1024.0))
}

/// Refuses the first run whose estimate exceeds what `device` offers; the error names the run,
/// the estimate and the memory available. Devices whose memory is unknown are not checked.
pub fn check_fits(runs: &[RunSpec], device: &str) -> Result<(), String> {
    let Some((what, available)) = available_bytes(device) else { return Ok(()) };
    match runs.iter().map(|r| (r, estimate_bytes(r))).max_by(|a, b| a.1.total_cmp(&b.1)) {
        Some((run, need)) if need > available => {
            Err(too_large(&format!("run {}", run.run_id), need, &run.shape, run.batch_size, (&what, available), device))
        }
        _ => Ok(()),
    }
}

/// Refuses training `shape` at `batch_size` (`what`, e.g. "the benchmark model") on `device`
/// when the estimate exceeds the memory the device offers.
pub fn check_shape_fits(
    what: &str,
    shape: &ModelShape,
    batch_size: usize,
    bf16_matmuls: bool,
    device: &str,
) -> Result<(), String> {
    let Some((memory, available)) = available_bytes(device) else { return Ok(()) };
    let need = estimate_shape_bytes(shape, batch_size, bf16_matmuls);
    if need > available {
        return Err(too_large(what, need, shape, batch_size, (&memory, available), device));
    }
    Ok(())
}

fn too_large(
    what: &str,
    need: f64,
    shape: &ModelShape,
    batch_size: usize,
    (memory, available): (&str, f64),
    device: &str,
) -> String {
    format!(
        "{what} needs about {} to train ({} parameters at batch {batch_size}), more than the {} of {memory} on \
         {device}; use smaller models or batches",
        human_bytes(need),
        shape.params_total(),
        human_bytes(available)
    )
}

/// Bytes as KiB/MiB/GiB/TiB with three significant figures.
pub fn human_bytes(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.3} {}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::plan::RunSpec;

    fn spec(d_model: usize, n_layers: usize, batch: usize) -> RunSpec {
        let text = format!(
            "name = \"m\"\ndevice = \"cpu\"\n[model]\nd_model = {d_model}\nn_layers = {n_layers}\nn_heads = {}\nseq_len = 64\n\
             [data]\nkind = \"synthetic\"\nvocab_size = 256\n[train]\ntokens = 1000000\nbatch_size = {batch}\nlr = 1e-3\n",
            d_model / 16
        );
        let config: RunConfig = toml::from_str(&text).unwrap();
        config.to_spec().unwrap()
    }

    #[test]
    fn estimate_counts_optimiser_state_and_activations() {
        let s = spec(64, 2, 8);
        let p = s.shape.params_total() as f64;
        // 2 layers × 8·64 tokens × (12·64 + 2·256) + 2·8·4·64², the logits 3·8·64·256 + 2·8·64·64,
        // 4 bytes each, twice (activations and their gradients).
        let act = 8.0
            * (2.0 * (512.0 * (768.0 + 512.0) + 2.0 * 8.0 * 4.0 * 4096.0) + 3.0 * 512.0 * 256.0 + 2.0 * 512.0 * 64.0);
        assert_eq!(estimate_bytes(&s), 16.0 * p + act);
        // Doubling the batch doubles the activations only.
        assert_eq!(estimate_bytes(&spec(64, 2, 16)) - estimate_bytes(&s), act);
    }

    #[test]
    fn huge_width_is_refused_naming_the_run_and_both_sizes() {
        if available_bytes("cpu").is_none() {
            return;
        }
        let e = check_fits(&[spec(64, 1, 4), spec(1_048_576, 1, 4)], "cpu").unwrap_err();
        assert!(e.starts_with("run m needs about ") && e.contains("TiB") && e.contains("system RAM"), "{e}");
        assert!(check_fits(&[spec(64, 1, 4)], "cpu").is_ok());
        assert!(check_fits(&[spec(1_048_576, 1, 4)], "cuda:0").is_ok(), "unknown memory is not checked");
    }
}
