//! Atomic claims on sweep runs, so that several `sweeplaw sweep` workers (processes on one
//! machine, or Slurm array tasks sharing a results directory, possibly over NFS) never train
//! one run at the same time, and a run whose worker died is taken over instead of being lost.
//!
//! # Protocol
//!
//! A worker claims a run by creating `<run_dir>/claim.json` with `create_new` (`O_EXCL`, atomic
//! on local filesystems and on NFSv3 and later). The file holds a [`ClaimRecord`]: worker, pid,
//! hostname, a token unique to this claim, `claimed_at_unix` and `heartbeat_unix`.
//!
//! - **Heartbeat.** A background thread refreshes `heartbeat_unix` every `heartbeat_every`. It
//!   opens the file, checks the token *through that descriptor*, and overwrites the content in
//!   place through the same descriptor. A takeover replaces `claim.json` by `rename` (a new
//!   inode), so a heartbeat racing a takeover writes into the replaced inode and can never
//!   bring back a claim that was taken away, which a write-to-temp + rename heartbeat could.
//!   The heartbeat then re-reads the path, and a token that is not ours marks the claim lost.
//! - **Staleness** is decided by the waiting worker, never from mtime alone (NFS mtimes come
//!   from the server's clock). A claim is stale once either its `heartbeat_unix` is older than
//!   `stale_after` by the local clock, or this worker has seen the file unchanged (same inode,
//!   same bytes) for `stale_after` by its own monotonic clock. The second rule makes a claim
//!   whose heartbeat lies in the future (a holder's clock ahead of ours, or a damaged file) go
//!   stale once it stops changing, instead of never; a live holder rewrites its heartbeat every
//!   `heartbeat_every`, so it never looks unchanged that long. A holder's clock *behind* ours
//!   by more than `stale_after` makes its live claims look stale early: they are taken over and
//!   it learns so at its next heartbeat (wasted work, never two owners for long, never a lost
//!   run). NTP keeps clocks within milliseconds; the default `stale_after` is 120 s. A file
//!   that does not parse (a worker killed mid-write, or a read racing a write) is aged by its
//!   mtime instead, under the same second rule, so it counts as held while young.
//! - **Takeover** of a stale claim happens under the lock file `claim.takeover`, itself made
//!   with `create_new`. The holder re-reads the claim and, only if it is still the same stale
//!   claim (same token, still stale), replaces it with its own by write-to-temp + rename. A
//!   worker that finds the lock held gets [`ClaimOutcome::HeldByOther`] naming the lock holder.
//!   A lock older than `stale_after` (its holder died) is broken. Before its rename the holder
//!   checks that its lock is still its own and younger than `stale_after / 2`.
//! - **Removing** a file that another worker may have replaced meanwhile (releasing a claim,
//!   releasing or breaking a lock) never deletes the replacement: the file is renamed aside to
//!   a unique name, inspected there, then deleted, or hard-linked back if it is not the one
//!   expected.
//! - **Frozen workers.** A worker stopped (SIGSTOP, swapped out, a hung NFS mount) for longer
//!   than `stale_after` may have lost its claim. Once a claim's last confirmed heartbeat is
//!   older than `stale_after / 2`, the next heartbeat, and [`Claim::still_ours`], take the
//!   takeover lock before they check and refresh, so they cannot interleave with a takeover;
//!   a lock held by someone else then counts as lost. While heartbeats are on time,
//!   [`Claim::still_ours`] is an atomic load, cheap enough to call every training step.
//!
//! Residual window: a worker frozen for longer than `stale_after` exactly between its last
//! check and its `rename` (or a holder's clock behind by about `stale_after`) can still replace a newer
//! claim; the newer owner then sees `still_ours() == false` at its next heartbeat, so two
//! workers overlap for at most one `heartbeat_every`, and no run is left unclaimed.
//!
//! Dropping a [`Claim`] stops its heartbeat and leaves the file in place, so a claim dropped
//! while unwinding from a panic goes stale and is taken over after `stale_after`. Call
//! [`Claim::release`] on every normal exit path (done, diverged, failed) so the run is free at
//! once. A worker killed between writing a temporary file and renaming it leaves
//! `claim.json.tmp.<token>` behind; such files are never read and are safe to delete.
//!
//! Unix semantics are assumed (rename over an open file, hard links); it works on Linux and
//! macOS local filesystems and on NFS.

use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use files::*;

/// Name of the claim file inside a run directory.
pub const CLAIM_FILE: &str = "claim.json";
/// Name of the lock file that serialises takeovers of a stale claim in a run directory.
pub const TAKEOVER_LOCK_FILE: &str = "claim.takeover";
/// How often one call retries when the file it is after changes under it.
const MAX_ATTEMPTS: usize = 4;
/// Worker name reported for a claim or lock file whose content does not parse.
const UNREADABLE_WORKER: &str = "unknown (unreadable claim file)";

/// Failure to read, write or move a claim file; every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error("encoding the claim record for {}: {source}", path.display())]
    Encode { path: PathBuf, source: serde_json::Error },
    #[error("invalid claim config for {}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ClaimError + 'a {
    move |source| ClaimError::Io { action, path: path.to_path_buf(), source }
}

/// Who claims and how quickly a silent claim is taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimConfig {
    /// Written into the claim and reported to other workers, e.g. `host:pid` or `3/8:host:pid`.
    pub worker: String,
    /// A claim whose heartbeat is older than this is taken over (default 120 s).
    pub stale_after: Duration,
    /// How often the holder refreshes its heartbeat (default 10 s); at most `stale_after / 2`.
    pub heartbeat_every: Duration,
}

impl ClaimConfig {
    pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(120);
    pub const DEFAULT_HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

    /// A config for `worker` with the default timings.
    pub fn new(worker: impl Into<String>) -> Self {
        ClaimConfig {
            worker: worker.into(),
            stale_after: Self::DEFAULT_STALE_AFTER,
            heartbeat_every: Self::DEFAULT_HEARTBEAT_EVERY,
        }
    }

    fn validate(&self, run_dir: &Path) -> Result<(), ClaimError> {
        let reason = if self.worker.is_empty() {
            "worker is empty"
        } else if self.heartbeat_every.is_zero() {
            "heartbeat_every is zero"
        } else if self.heartbeat_every.saturating_mul(2) > self.stale_after {
            "heartbeat_every must be at most half of stale_after"
        } else {
            return Ok(());
        };
        Err(ClaimError::Config {
            path: run_dir.join(CLAIM_FILE),
            reason: format!(
                "{reason} (heartbeat_every {:?}, stale_after {:?})",
                self.heartbeat_every, self.stale_after
            ),
        })
    }
}

impl Default for ClaimConfig {
    fn default() -> Self {
        Self::new(default_worker_name())
    }
}

/// `hostname:pid` of this process, the default worker name.
pub fn default_worker_name() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

/// Content of `claim.json` (and of `claim.takeover`, whose heartbeat is its creation time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub worker: String,
    pub pid: u32,
    pub hostname: String,
    /// Unique to one claim, so a worker recognises its own file even if names repeat.
    pub token: String,
    pub claimed_at_unix: f64,
    pub heartbeat_unix: f64,
}

impl ClaimRecord {
    fn new(worker: &str) -> Self {
        let now = unix_now();
        ClaimRecord {
            worker: worker.to_string(),
            pid: std::process::id(),
            hostname: hostname(),
            token: unique_token(),
            claimed_at_unix: now,
            heartbeat_unix: now,
        }
    }

    /// Time since the last heartbeat by the local clock; zero if the heartbeat is in the future.
    fn age(&self) -> Duration {
        let secs = unix_now() - self.heartbeat_unix;
        if secs <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

/// Who holds a run, as seen by [`inspect_claim`] (for status displays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimState {
    Free,
    Live { worker: String, age: Duration },
    Stale { worker: String, age: Duration },
}

/// Reads the claim of `run_dir` without changing anything.
pub fn inspect_claim(run_dir: &Path, stale_after: Duration) -> Result<ClaimState, ClaimError> {
    Ok(match observe(&run_dir.join(CLAIM_FILE))? {
        None => ClaimState::Free,
        Some(seen) if seen.is_stale(stale_after) => ClaimState::Stale { worker: seen.worker(), age: seen.age },
        Some(seen) => ClaimState::Live { worker: seen.worker(), age: seen.age },
    })
}

/// Result of [`try_claim`].
#[derive(Debug)]
pub enum ClaimOutcome {
    /// The run is ours until [`Claim::still_ours`] turns false.
    Claimed(Claim),
    /// Another worker holds the run (or is taking it over right now); `age` is the time since
    /// its last heartbeat.
    HeldByOther { worker: String, age: Duration },
}

/// Tries to claim `run_dir` (created if missing) for `cfg.worker`: creates `claim.json`
/// exclusively, or takes over a claim whose heartbeat is older than `cfg.stale_after`.
pub fn try_claim(run_dir: &Path, cfg: &ClaimConfig) -> Result<ClaimOutcome, ClaimError> {
    cfg.validate(run_dir)?;
    fs::create_dir_all(run_dir).map_err(io_error("creating the run directory", run_dir))?;
    let path = run_dir.join(CLAIM_FILE);
    for _ in 0..MAX_ATTEMPTS {
        match attempt_claim(run_dir, &path, cfg)? {
            Attempt::Won { record, confirmed } => {
                return Claim::start(run_dir, path, record, confirmed, cfg).map(ClaimOutcome::Claimed)
            }
            Attempt::Held { worker, age } => return Ok(ClaimOutcome::HeldByOther { worker, age }),
            Attempt::Retry => {}
        }
    }
    Ok(ClaimOutcome::HeldByOther { worker: "unknown (claim file kept changing)".to_string(), age: Duration::ZERO })
}

/// One step of [`try_claim`].
enum Attempt {
    /// `confirmed`: an instant no later than the heartbeat written into the file.
    Won {
        record: ClaimRecord,
        confirmed: Instant,
    },
    Held {
        worker: String,
        age: Duration,
    },
    /// The file changed or vanished meanwhile; look again.
    Retry,
}

fn attempt_claim(run_dir: &Path, path: &Path, cfg: &ClaimConfig) -> Result<Attempt, ClaimError> {
    let confirmed = Instant::now();
    let record = ClaimRecord::new(&cfg.worker);
    if create_exclusive(path, &record)? {
        return Ok(Attempt::Won { record, confirmed });
    }
    match observe(path)? {
        None => Ok(Attempt::Retry),
        Some(seen) if !seen.is_stale(cfg.stale_after) => Ok(Attempt::Held { worker: seen.worker(), age: seen.age }),
        Some(seen) => take_over(run_dir, path, &seen, cfg),
    }
}

/// Replaces the stale claim `seen` with ours, under the takeover lock.
fn take_over(run_dir: &Path, path: &Path, seen: &Observed, cfg: &ClaimConfig) -> Result<Attempt, ClaimError> {
    let lock = match TakeoverLock::acquire(run_dir, cfg)? {
        LockAttempt::Acquired(lock) => lock,
        LockAttempt::Busy { worker, age } => return Ok(Attempt::Held { worker, age }),
    };
    let unchanged = observe(path)?.is_some_and(|now| now.is_stale(cfg.stale_after) && now.token() == seen.token());
    if !unchanged {
        return Ok(Attempt::Retry);
    }
    let confirmed = Instant::now();
    let record = ClaimRecord::new(&cfg.worker);
    let temp = write_temp(path, &record)?;
    match lock.still_held() {
        Ok(true) => {}
        held => {
            remove_quietly(&temp);
            return held.map(|_| Attempt::Retry);
        }
    }
    if let Err(e) = fs::rename(&temp, path) {
        remove_quietly(&temp);
        return Err(io_error("renaming the new claim onto", path)(e));
    }
    drop(lock);
    Ok(Attempt::Won { record, confirmed })
}

/// A claimed run. Its heartbeat thread runs until [`Claim::release`], drop, or the claim is
/// found taken over. Dropping stops the heartbeat and leaves the file to go stale.
#[derive(Debug)]
pub struct Claim {
    heartbeat: Arc<Heartbeat>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Claim {
    fn start(
        run_dir: &Path,
        path: PathBuf,
        record: ClaimRecord,
        confirmed: Instant,
        cfg: &ClaimConfig,
    ) -> Result<Claim, ClaimError> {
        let token = record.token.clone();
        let heartbeat = Arc::new(Heartbeat {
            run_dir: run_dir.to_path_buf(),
            path,
            cfg: cfg.clone(),
            state: Mutex::new(BeatState { record, confirmed }),
            lost: AtomicBool::new(false),
        });
        let (stop, stop_rx) = mpsc::channel();
        let beat = Arc::clone(&heartbeat);
        let spawned = std::thread::Builder::new()
            .name("claim-heartbeat".to_string())
            .spawn(move || run_heartbeat(&beat, &stop_rx));
        match spawned {
            Ok(thread) => Ok(Claim { heartbeat, stop: Some(stop), thread: Some(thread) }),
            Err(e) => {
                let path = &heartbeat.path;
                let _ = remove_own_claim(path, &token);
                Err(io_error("starting the heartbeat thread for", path)(e))
            }
        }
    }

    /// False once another worker has taken the claim over (we were frozen or too slow), or when
    /// our heartbeat is overdue and cannot be confirmed now. Stop training the run then.
    pub fn still_ours(&self) -> bool {
        if self.heartbeat.lost.load(Ordering::SeqCst) {
            return false;
        }
        let late = self.heartbeat.state().is_late(self.heartbeat.cfg.stale_after);
        !late || matches!(self.heartbeat.beat(), Ok(true))
    }

    /// Stops the heartbeat and removes the claim file if it is still ours (a claim taken over by
    /// another worker is left to it).
    pub fn release(mut self) -> Result<(), ClaimError> {
        self.stop_heartbeat();
        if self.heartbeat.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        let token = self.heartbeat.state().record.token.clone();
        remove_own_claim(&self.heartbeat.path, &token)
    }

    /// The worker name this claim was made under.
    pub fn worker(&self) -> &str {
        &self.heartbeat.cfg.worker
    }

    /// Path of the claim file.
    pub fn claim_file(&self) -> &Path {
        &self.heartbeat.path
    }

    fn stop_heartbeat(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

/// State shared by a [`Claim`] and its heartbeat thread.
#[derive(Debug)]
struct Heartbeat {
    run_dir: PathBuf,
    path: PathBuf,
    cfg: ClaimConfig,
    state: Mutex<BeatState>,
    lost: AtomicBool,
}

#[derive(Debug)]
struct BeatState {
    record: ClaimRecord,
    /// When the last heartbeat known to be ours started.
    confirmed: Instant,
}

impl BeatState {
    /// Overdue enough that a takeover may be under way: check under the lock.
    fn is_late(&self, stale_after: Duration) -> bool {
        self.confirmed.elapsed().saturating_mul(2) >= stale_after
    }
}

impl Heartbeat {
    fn state(&self) -> MutexGuard<'_, BeatState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refreshes the heartbeat if the claim is still ours; `Ok(false)` marks it lost for good.
    fn beat(&self) -> Result<bool, ClaimError> {
        let mut state = self.state();
        if self.lost.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let started = Instant::now();
        let ours = if state.is_late(self.cfg.stale_after) {
            self.beat_under_lock(&mut state.record)?
        } else {
            refresh_in_place(&self.path, &mut state.record)?
        };
        if ours {
            state.confirmed = started;
        } else {
            self.lost.store(true, Ordering::SeqCst);
        }
        Ok(ours)
    }

    fn beat_under_lock(&self, record: &mut ClaimRecord) -> Result<bool, ClaimError> {
        match TakeoverLock::acquire(&self.run_dir, &self.cfg)? {
            LockAttempt::Acquired(lock) => {
                let ours = refresh_in_place(&self.path, record);
                drop(lock);
                ours
            }
            // Someone is taking over our stale-looking claim.
            LockAttempt::Busy { .. } => Ok(false),
        }
    }
}

/// Beats every `heartbeat_every` until told to stop or the claim is lost. An I/O error leaves
/// the beat unconfirmed; it is retried, and once overdue `still_ours` reports false.
fn run_heartbeat(heartbeat: &Heartbeat, stop: &Receiver<()>) {
    loop {
        match stop.recv_timeout(heartbeat.cfg.heartbeat_every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Ok(false) = heartbeat.beat() {
            return;
        }
    }
}

/// Rewrites `record` with a fresh heartbeat into `path`, through one descriptor, after checking
/// through it that the file is ours; then re-reads `path`, so a replacement that raced the
/// write (the write went into the replaced inode, harmlessly) is seen as a loss.
fn refresh_in_place(path: &Path, record: &mut ClaimRecord) -> Result<bool, ClaimError> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error("opening", path)(e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_error("reading", path))?;
    let ours = serde_json::from_slice::<ClaimRecord>(&bytes).is_ok_and(|r| r.token == record.token);
    if !ours {
        return Ok(false);
    }
    record.heartbeat_unix = unix_now();
    let fresh = encode(record, path)?;
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&fresh))
        .and_then(|()| file.set_len(fresh.len() as u64))
        .map_err(io_error("writing the heartbeat to", path))?;
    drop(file); // closing flushes the write to an NFS server
    Ok(observe(path)?.is_some_and(|seen| seen.token() == Some(record.token.as_str())))
}

/// Removes the claim at `path` if it holds `token`.
fn remove_own_claim(path: &Path, token: &str) -> Result<(), ClaimError> {
    let ours = |seen: &Observed| seen.token() == Some(token);
    // Look first, so that a claim taken over is not even moved aside.
    if observe(path)?.as_ref().is_some_and(ours) {
        remove_if(path, token, ours)?;
    }
    Ok(())
}

mod files;
#[cfg(test)]
mod tests;
