//! run.json: one run's spec, counts, data, result and status (docs/DESIGN.md "Results: the
//! stable contract"). Written once per state change, atomically; read strictly, since a run
//! whose record is damaged must be reported, never retrained over silently.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::model::FlopsPerToken;
use crate::records::plan::RunSpec;

/// Version of the record format; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Done,
    Diverged,
    Failed,
    Running,
    Pending,
}

impl RunStatus {
    /// Every status, in summary.csv's order of life.
    pub const ALL: &'static [RunStatus] =
        &[RunStatus::Done, RunStatus::Diverged, RunStatus::Failed, RunStatus::Running, RunStatus::Pending];

    /// The status named `name` as records write it ("done", ...), if it is one.
    pub fn parse(name: &str) -> Option<RunStatus> {
        RunStatus::ALL.iter().copied().find(|status| status.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Done => "done",
            RunStatus::Diverged => "diverged",
            RunStatus::Failed => "failed",
            RunStatus::Running => "running",
            RunStatus::Pending => "pending",
        }
    }
}

/// Exact parameter counts and FLOPs per token of the run's model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub params_nonembedding: u64,
    pub params_total: u64,
    pub params_matmul: u64,
    pub flops_per_token: FlopsPerToken,
}

/// What the data source says about itself and its validation split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    pub source: String,
    pub vocab_size: usize,
    pub unique_tokens: Option<u64>,
    /// Exact entropy of the validation targets (nats/token): the irreducible loss, when known.
    pub true_entropy: Option<f64>,
    /// Entropy of the validation targets' unigram distribution (what a model without context gets).
    pub unigram_entropy: Option<f64>,
    pub eval_tokens: u64,
    /// The seed that keyed the training order (the run's seed, or the data section's
    /// `data_seed`); None when the order is not seeded by the run.
    #[serde(default)]
    pub data_seed: Option<u64>,
    /// Which tokens the validation set holds (e.g. evenly spaced windows over the held-out documents).
    #[serde(default)]
    pub validation_sample: Option<String>,
    /// sha256 (hex) of each token file trained on, by path.
    #[serde(default)]
    pub token_files_sha256: std::collections::BTreeMap<String, String>,
}

impl DataInfo {
    /// The record as resume and `--reuse` compare it, so that the same data compare equal:
    ///
    /// - as run.json holds it ([`as_recorded`](crate::records::as_recorded)): a computed
    ///   entropy equals a recorded one only once it has made the same trip through JSON.
    /// - without where its files were reached from. A source names its files (a tokenizer, a
    ///   token file) by their paths resolved against the config's folder as the command was
    ///   given it, so one config started from two working directories, or by a Slurm task
    ///   through its absolute path, names the same files differently; what they hold is named by
    ///   the sha256 beside each. So each path is cut to its file name, keeping a trained
    ///   tokenizer's cache folder (`bpe-<vocab>-<key>`, keyed by the corpus it was trained on).
    pub fn comparable(&self) -> DataInfo {
        let recorded = crate::records::as_recorded(self);
        let mut source = recorded.source.clone();
        for (key, end) in [("tokenizer=", " sha256:"), ("train=", " ("), ("validation=", " (")] {
            source = shorten_path_after(&source, key, end);
        }
        let mut token_files_sha256 = std::collections::BTreeMap::new();
        for (path, sha) in &recorded.token_files_sha256 {
            let mut name = file_name(path);
            let mut n = 1;
            while token_files_sha256.contains_key(&name) {
                n += 1;
                name = format!("{} ({n})", file_name(path));
            }
            token_files_sha256.insert(name, sha.clone());
        }
        DataInfo { source, token_files_sha256, ..recorded }
    }
}

/// `text` with the path between `key` (at the start or after "(" or " ") and the next `end`
/// cut to [`file_name`]; unchanged where there is no such path.
fn shorten_path_after(text: &str, key: &str, end: &str) -> String {
    let found = text.match_indices(key).find(|(at, _)| *at == 0 || matches!(text.as_bytes()[at - 1], b'(' | b' '));
    let Some((at, _)) = found else { return text.to_string() };
    let start = at + key.len();
    let Some(length) = text[start..].find(end) else { return text.to_string() };
    format!("{}{}{}", &text[..start], file_name(&text[start..start + length]), &text[start + length..])
}

/// A path's file name, with its folder when that is a trained tokenizer's cache entry.
fn file_name(path: &str) -> String {
    let path = Path::new(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match path.parent().and_then(Path::file_name).map(|p| p.to_string_lossy()) {
        Some(folder) if folder.starts_with("bpe-") => format!("{folder}/{name}"),
        _ => name,
    }
}

/// Final figures of a run (present once it has trained at least one step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub steps: u64,
    pub tokens: u64,
    /// Compute under each convention: flops_per_token × tokens.
    pub flops_6n: f64,
    pub flops_matmul_attn: f64,
    pub flops_chinchilla: f64,
    pub val_loss: Option<f64>,
    pub train_loss: Option<f64>,
    pub wall_s: f64,
    pub tokens_per_s: f64,
    /// Passes over the unique training tokens (tokens / data.unique_tokens) when the data repeats.
    #[serde(default)]
    pub epochs: Option<f64>,
}

/// run.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format_version: u32,
    pub run_id: String,
    pub status: RunStatus,
    /// Why a run is diverged or failed.
    pub reason: Option<String>,
    pub spec: RunSpec,
    pub counts: Counts,
    pub data: DataInfo,
    pub result: Option<RunResult>,
    pub device: String,
    /// Which ops trained the run: "fused" (sweeplaw's fused CPU ops or CUDA kernels),
    /// `"fused except <kernels>"` (CUDA kernels that failed their check and were turned off) or
    /// "composite" (candle's ops only: `SWEEPLAW_OPS=composite`); empty until the run starts, and
    /// in records written before this field existed.
    #[serde(default)]
    pub ops: String,
    pub versions: Versions,
    pub started_at_unix: u64,
    pub finished_at_unix: Option<u64>,
    /// Hash of the config the run belongs to (a sweep's plan hash, or a single run's spec
    /// hash): a results directory's identity does not rest on plan.json alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Where this finished run was copied from by `sweep --reuse`: the sweep directory and its
    /// config hash (the run's spec and data were checked equal to this plan's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
}

/// The parts of a run.json the figures and the report use, read leniently: any of them may be
/// missing (records written by older versions, hand-made fixtures), so a run.json that
/// [`RunRecord::parse`] rejects still gives what it holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunInfo {
    /// The run's status (absent when the record has none, or one sweeplaw does not write).
    pub status: Option<RunStatus>,
    pub flop_budget: Option<f64>,
    pub data_source: Option<String>,
    pub device: Option<String>,
    /// "fused" or "composite" (absent in older records).
    pub ops: Option<String>,
    pub true_entropy: Option<f64>,
    pub batch_size: Option<f64>,
    pub lr: Option<f64>,
}

/// run.json's shape as [`RunInfo`] reads it: every part optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LenientRecord {
    status: Option<String>,
    spec: Option<LenientSpec>,
    data: Option<LenientData>,
    device: Option<String>,
    ops: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LenientSpec {
    flop_budget: Option<f64>,
    batch_size: Option<f64>,
    lr: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LenientData {
    source: Option<String>,
    true_entropy: Option<f64>,
}

impl RunInfo {
    /// Reads run.json leniently; an unreadable file is a warning and an empty `RunInfo`.
    pub fn read(path: &Path, warnings: &mut Vec<String>) -> RunInfo {
        match fs::read(path) {
            Ok(bytes) => RunInfo::parse(path, &bytes, warnings),
            Err(error) => {
                warnings.push(format!("{}: {error}", path.display()));
                RunInfo::default()
            }
        }
    }

    /// The parts of a run.json's bytes the figures use; `path` only names the file in messages
    /// (with the line serde stopped at). Bytes that are not JSON, or JSON whose parts have the
    /// wrong types, are a warning and an empty `RunInfo`.
    pub fn parse(path: &Path, bytes: &[u8], warnings: &mut Vec<String>) -> RunInfo {
        let record: LenientRecord = match serde_json::from_slice(bytes) {
            Ok(record) => record,
            Err(error) => {
                let what = if error.is_data() { "not a run.json" } else { "not valid JSON" };
                warnings.push(format!("{} line {}: {what} ({error}); ignored", path.display(), error.line()));
                return RunInfo::default();
            }
        };
        let (spec, data) = (record.spec.unwrap_or_default(), record.data.unwrap_or_default());
        RunInfo {
            status: record.status.as_deref().and_then(RunStatus::parse),
            flop_budget: spec.flop_budget.filter(|v| v.is_finite() && *v > 0.0),
            data_source: data.source,
            device: record.device,
            ops: record.ops.filter(|ops| !ops.is_empty()),
            true_entropy: data.true_entropy.filter(|v| v.is_finite()),
            batch_size: spec.batch_size.filter(|v| v.is_finite()),
            lr: spec.lr.filter(|v| v.is_finite()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub sweeplaw: String,
    pub candle: String,
}

impl Default for Versions {
    fn default() -> Self {
        Versions { sweeplaw: env!("CARGO_PKG_VERSION").into(), candle: "0.11.1".into() }
    }
}

impl RunRecord {
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::record(path, e.to_string()))?;
        write_atomic(path, json.as_bytes())?;
        Ok(())
    }

    pub fn read(path: &Path) -> Result<RunRecord> {
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        RunRecord::parse(path, &bytes)
    }

    /// Parses the bytes of a run.json; `path` only names it in the error (with serde's line).
    /// A record whose numbers are impossible (a negative or non-finite loss, a run id that is not
    /// its folder's) is as damaged as one that does not parse.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<RunRecord> {
        let record: RunRecord =
            serde_json::from_slice(bytes).map_err(|e| Error::record(path, format!("not a valid run.json: {e}")))?;
        if record.run_id != record.spec.run_id {
            return Err(Error::record(
                path,
                format!("run_id {:?} is not the spec's {:?}", record.run_id, record.spec.run_id),
            ));
        }
        if let Some(result) = &record.result {
            for (name, value) in [("val_loss", result.val_loss), ("train_loss", result.train_loss)] {
                if value.is_some_and(|v| v.is_nan() || v < 0.0) && record.status == RunStatus::Done {
                    return Err(Error::record(path, format!("result.{name} is {value:?} in a run marked done")));
                }
            }
        }
        Ok(record)
    }

    /// The summary.csv row of this run (empty cells for unknowns, never zero).
    pub fn summary_row(&self) -> Vec<String> {
        let s = &self.spec.shape;
        let r = self.result.as_ref();
        let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
        vec![
            self.run_id.clone(),
            self.status.as_str().into(),
            s.n_layers.to_string(),
            s.d_model.to_string(),
            s.n_heads.to_string(),
            s.seq_len.to_string(),
            s.vocab_size.to_string(),
            self.counts.params_nonembedding.to_string(),
            self.counts.params_total.to_string(),
            self.counts.params_matmul.to_string(),
            r.map(|r| r.tokens.to_string()).unwrap_or_default(),
            self.data.unique_tokens.map(|u| u.to_string()).unwrap_or_default(),
            opt(r.map(|r| r.flops_6n)),
            opt(r.and_then(|r| r.val_loss)),
            opt(r.and_then(|r| r.train_loss)),
            opt(r.map(|r| r.wall_s)),
            self.spec.seed.to_string(),
            opt(r.map(|r| r.flops_6n)),
            opt(r.map(|r| r.flops_matmul_attn)),
            opt(r.map(|r| r.flops_chinchilla)),
            opt(self.data.true_entropy),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(source: &str, files: &[(&str, &str)]) -> DataInfo {
        DataInfo {
            source: source.into(),
            vocab_size: 64,
            unique_tokens: None,
            true_entropy: None,
            unigram_entropy: None,
            eval_tokens: 1024,
            data_seed: None,
            validation_sample: None,
            token_files_sha256: files.iter().map(|(p, s)| (p.to_string(), s.to_string())).collect(),
        }
    }

    /// A run's data computed now compares equal to the same data read from its run.json, though
    /// serde_json reads some numbers back one unit in the last place off (this one, the true
    /// entropy of a synthetic sweep, refused every resume of that sweep as other data).
    #[test]
    fn the_same_data_compares_equal_to_its_record() {
        let mut now = data("synthetic(seed=1)", &[]);
        for value in [1.4142682562448459, 5.917583862007863, 0.1 + 0.2, 2.0f64.sqrt(), 1e-300, f64::MAX] {
            now.true_entropy = Some(value);
            now.unigram_entropy = Some(value / 3.0);
            let recorded: DataInfo = serde_json::from_str(&serde_json::to_string_pretty(&now).unwrap()).unwrap();
            assert_eq!(recorded.comparable(), now.comparable(), "{value:?}");
        }
        now.true_entropy = Some(1.4142682562448459);
        let other = DataInfo { true_entropy: Some(1.4142682562448472), ..now.clone() };
        assert_ne!(other.comparable(), now.comparable(), "a few units in the last place apart are other data");
    }

    #[test]
    fn where_the_files_were_reached_from_is_not_part_of_the_data() {
        let text = |at: &str, key: &str| {
            data(&format!("text(files=2, tokens=9 (8 train), tokenizer={at}/{key}/tokenizer.json sha256:6822, vocab=1024), first 8 training tokens"), &[])
        };
        let here = text("configs/../data/cache", "bpe-1024-3b9a");
        assert_eq!(here.comparable(), text("/home/me/project/data/cache", "bpe-1024-3b9a").comparable());
        assert!(here.comparable().source.contains("tokenizer=bpe-1024-3b9a/tokenizer.json sha256:6822, vocab"));
        assert_ne!(here.comparable(), text("configs/../data/cache", "bpe-1024-77aa").comparable(), "another corpus");

        let tokens = |at: &str, sha: &str| {
            data(
                &format!("tokens(train={at}/train.bin (18000 tokens, sha256:{sha}), validation={at}/val.bin (90 tokens, sha256:ee), 2 bytes per id, vocab=64)"),
                &[(&format!("{at}/train.bin"), sha), (&format!("{at}/val.bin"), "ee")],
            )
        };
        let relative = tokens("./data", "aa58");
        assert_eq!(relative.comparable(), tokens("/srv/project/data", "aa58").comparable());
        assert_eq!(relative.comparable().token_files_sha256.keys().collect::<Vec<_>>(), ["train.bin", "val.bin"]);
        assert_ne!(relative.comparable(), tokens("./data", "c35c").comparable(), "another file's content");
        // Two files of one name in different folders are both kept.
        let same_name = data("tokens(x)", &[("a/t.bin", "1"), ("b/t.bin", "2")]).comparable();
        assert_eq!(same_name.token_files_sha256.len(), 2);
        // A source that names no path is left as it is.
        let synthetic = data("synthetic(seed=1, vocab=64, validation = its last 9 tokens)", &[]);
        assert_eq!(synthetic.comparable(), synthetic);
    }
}
