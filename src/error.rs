//! The library's error type: every failure names the file, field, run or device it is about.

use std::path::{Path, PathBuf};

/// Errors returned by the sweeplaw library. `main.rs` prints them; nothing here panics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config file that does not parse, or a value that is impossible.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record (run.json, metrics.csv, checkpoint) that cannot be read or written.
    #[error("{path}: {message}")]
    Record { path: PathBuf, message: String },
    /// The device string names a device this build or machine does not have.
    #[error("device {device:?}: {message}")]
    Device { device: String, message: String },
    /// A tensor operation failed inside candle.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// The data source failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A run's state is inconsistent (for example a checkpoint for another model).
    #[error("run {run}: {message}")]
    Run { run: String, message: String },
    /// A run stopped before its end, leaving its records as they are, because another worker
    /// took its claim over: the run is that worker's now.
    #[error("run {run}: {reason}")]
    ClaimLost { run: String, reason: String },
    /// A run stopped by SIGINT or SIGTERM after its current step; `checkpoint` is where it
    /// resumes from (None when it had no checkpoint to write).
    #[error("run {run}: stopped by {} after step {step}", signal_name(*signal))]
    Interrupted { run: String, signal: i32, step: u64, checkpoint: Option<PathBuf> },
    /// A bad flag or argument value on the command line (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// An operation that failed for a reason its message gives (a check that found no
    /// gradient, a fit the ladder needs that could not be made, a worker thread that panicked).
    #[error("{0}")]
    Failed(String),
    /// `--strict` and a plan whose checks warned (the warnings are printed above the error).
    #[error("--strict: the plan has {0} warning(s) (above); fix the design or drop --strict")]
    StrictRefusal(usize),
}

impl From<crate::fs::FsError> for Error {
    fn from(error: crate::fs::FsError) -> Self {
        Error::Io { path: error.path, source: error.source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }
    pub fn config(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Config { path: path.as_ref().to_path_buf(), message: message.into() }
    }
    pub fn record(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Record { path: path.as_ref().to_path_buf(), message: message.into() }
    }

    /// A full disk or an exceeded quota: not a run's fault, so a sweep stops (keeping its
    /// records) instead of failing every run in turn.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => is_storage_full(source),
            _ => false,
        }
    }
}

/// ENOSPC or EDQUOT, by kind or by OS error number.
pub fn is_storage_full(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
        || matches!(error.raw_os_error(), Some(28) | Some(122))
}

/// "SIGINT", "SIGTERM" or "signal N".
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        other => format!("signal {other}"),
    }
}
