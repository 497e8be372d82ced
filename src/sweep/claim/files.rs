//! The file primitives of the claim protocol (see `claim`): the takeover lock, one read of a
//! claim file, exclusive creation, temporary files and removal that never deletes a replacement.

use super::*;

/// The exclusive right to replace a run's claim file; removed on drop if still ours.
#[derive(Debug)]
pub(super) struct TakeoverLock {
    pub(super) path: PathBuf,
    pub(super) token: String,
    pub(super) acquired: Instant,
    pub(super) stale_after: Duration,
}

pub(super) enum LockAttempt {
    Acquired(TakeoverLock),
    Busy { worker: String, age: Duration },
}

impl TakeoverLock {
    /// Creates `claim.takeover` exclusively, breaking a lock older than `stale_after`.
    pub(super) fn acquire(run_dir: &Path, cfg: &ClaimConfig) -> Result<LockAttempt, ClaimError> {
        let path = run_dir.join(TAKEOVER_LOCK_FILE);
        let record = ClaimRecord::new(&cfg.worker);
        for _ in 0..MAX_ATTEMPTS {
            let acquired = Instant::now();
            if create_exclusive(&path, &record)? {
                let token = record.token;
                let stale_after = cfg.stale_after;
                let lock = TakeoverLock { path, token, acquired, stale_after };
                return Ok(LockAttempt::Acquired(lock));
            }
            match observe(&path)? {
                None => {}
                Some(seen) if !seen.is_stale(cfg.stale_after) => {
                    let (worker, age) = (seen.worker(), seen.age);
                    return Ok(LockAttempt::Busy { worker, age });
                }
                Some(seen) => {
                    let same_stale = |now: &Observed| now.token() == seen.token() && now.is_stale(cfg.stale_after);
                    remove_if(&path, &record.token, same_stale)?;
                }
            }
        }
        let worker = "unknown (takeover lock kept changing)".to_string();
        Ok(LockAttempt::Busy { worker, age: Duration::ZERO })
    }

    /// True while the lock file is ours and young enough that nobody may have broken it.
    pub(super) fn still_held(&self) -> Result<bool, ClaimError> {
        if self.acquired.elapsed().saturating_mul(2) >= self.stale_after {
            return Ok(false);
        }
        Ok(observe(&self.path)?.is_some_and(|seen| seen.token() == Some(self.token.as_str())))
    }
}

impl Drop for TakeoverLock {
    fn drop(&mut self) {
        // A lock that cannot be removed goes stale and is broken after `stale_after`.
        let _ = remove_own_claim(&self.path, &self.token);
    }
}

/// One read of a claim or lock file: its record if it parses, and its age.
#[derive(Debug)]
pub(super) struct Observed {
    pub(super) record: Option<ClaimRecord>,
    pub(super) age: Duration,
}

impl Observed {
    pub(super) fn token(&self) -> Option<&str> {
        self.record.as_ref().map(|record| record.token.as_str())
    }

    pub(super) fn worker(&self) -> String {
        self.record.as_ref().map_or_else(|| UNREADABLE_WORKER.to_string(), |record| record.worker.clone())
    }

    /// Silent for `stale_after`, or held by a process of this host that no longer exists (a
    /// worker killed here is taken over at once, not after the timeout).
    pub(super) fn is_stale(&self, stale_after: Duration) -> bool {
        self.age >= stale_after || self.record.as_ref().is_some_and(holder_is_dead)
    }
}

/// Whether `record` was written by a process of this host that has exited. Decided through
/// /proc (Linux); where there is no /proc, or the pid is ours, the holder counts as alive.
/// Assumes hosts that share a results directory have distinct hostnames, or share one pid
/// namespace.
fn holder_is_dead(record: &ClaimRecord) -> bool {
    let proc = Path::new("/proc");
    record.hostname == hostname()
        && record.pid != std::process::id()
        && proc.join("self").exists()
        && !proc.join(record.pid.to_string()).exists()
}

/// Reads `path`, `None` if it does not exist. Its age is the larger of two: the time since the
/// heartbeat it records by the local clock (by its mtime when the content does not parse), and
/// how long this process has seen the same file with the same content ([`unchanged_for`]). The
/// second makes a claim whose heartbeat lies in the future (a holder's clock ahead of ours, or a
/// damaged file) go stale once it has stopped changing for `stale_after`, instead of never.
pub(super) fn observe(path: &Path) -> Result<Option<Observed>, ClaimError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("opening", path)(e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_error("reading", path))?;
    let meta = file.metadata().map_err(io_error("reading the metadata of", path))?;
    let unchanged = unchanged_for(path, &meta, &bytes);
    if let Ok(record) = serde_json::from_slice::<ClaimRecord>(&bytes) {
        let age = record.age().max(unchanged);
        return Ok(Some(Observed { record: Some(record), age }));
    }
    let modified = meta.modified().map_err(io_error("reading the mtime of", path))?;
    let age = SystemTime::now().duration_since(modified).unwrap_or(Duration::ZERO).max(unchanged);
    Ok(Some(Observed { record: None, age }))
}

/// How long this process has seen `path` as the same file (device and inode) with the same
/// `bytes`, by its own monotonic clock: zero on the first sight and whenever either changed. A
/// live holder rewrites its heartbeat every `heartbeat_every`, so its file never stays the same
/// for `stale_after`, whatever the clocks of the two hosts say.
fn unchanged_for(path: &Path, meta: &fs::Metadata, bytes: &[u8]) -> Duration {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    type Sighting = ((u64, u64), Vec<u8>, Instant);
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, Sighting>>> = OnceLock::new();
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    let identity = (meta.dev(), meta.ino());
    match seen.get(path) {
        Some((same_file, same_bytes, since)) if *same_file == identity && same_bytes == bytes => since.elapsed(),
        _ => {
            seen.insert(path.to_path_buf(), (identity, bytes.to_vec(), Instant::now()));
            Duration::ZERO
        }
    }
}

pub(super) fn encode(record: &ClaimRecord, path: &Path) -> Result<Vec<u8>, ClaimError> {
    serde_json::to_vec_pretty(record).map_err(|source| ClaimError::Encode { path: path.to_path_buf(), source })
}

/// Creates `path` holding `record` if nothing is there (`O_EXCL`); `false` if something is.
pub(super) fn create_exclusive(path: &Path, record: &ClaimRecord) -> Result<bool, ClaimError> {
    let bytes = encode(record, path)?;
    let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io_error("creating", path)(e)),
    };
    if let Err(e) = file.write_all(&bytes) {
        drop(file);
        // Still ours: a file this young is held by its mtime and nobody replaces it.
        remove_quietly(path);
        return Err(io_error("writing", path)(e));
    }
    Ok(true)
}

/// Writes `record` to a new temporary file next to `path` and returns its path.
pub(super) fn write_temp(path: &Path, record: &ClaimRecord) -> Result<PathBuf, ClaimError> {
    let temp = sibling(path, "tmp", &record.token);
    if create_exclusive(&temp, record)? {
        Ok(temp)
    } else {
        let exists = io::Error::from(io::ErrorKind::AlreadyExists);
        Err(io_error("creating", &temp)(exists))
    }
}

/// `<dir>/<name>.<purpose>.<token>` for `path` = `<dir>/<name>`.
pub(super) fn sibling(path: &Path, purpose: &str, token: &str) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}.{purpose}.{token}"))
}

/// What [`remove_if`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Removal {
    Removed,
    Absent,
    Kept,
}

/// Removes `path` if its content satisfies `expected`, without ever removing a file that
/// replaced it meanwhile: renames it aside (atomic), inspects it there, then deletes it or
/// links it back (`hard_link` fails rather than overwrite a file created in between).
pub(super) fn remove_if(path: &Path, tag: &str, expected: impl Fn(&Observed) -> bool) -> Result<Removal, ClaimError> {
    let aside = sibling(path, "aside", tag);
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Absent),
        Err(e) => return Err(io_error("moving aside", path)(e)),
    }
    let seen = match observe(&aside) {
        Ok(seen) => seen,
        Err(e) => {
            let _ = fs::rename(&aside, path);
            return Err(e);
        }
    };
    if seen.as_ref().is_none_or(expected) {
        remove_quietly(&aside);
        return Ok(Removal::Removed);
    }
    match fs::hard_link(&aside, path) {
        Ok(()) => remove_quietly(&aside),
        // A new file took the name: the one we moved lost it, and its owner will notice.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => remove_quietly(&aside),
        Err(_) => fs::rename(&aside, path).map_err(io_error("moving back", path))?,
    }
    Ok(Removal::Kept)
}

/// Best-effort removal of a file only this worker uses (its temporary or moved-aside files).
pub(super) fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

pub(super) fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

/// This machine's name: `/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `unknown-host`.
pub(super) fn hostname() -> String {
    static HOSTNAME: OnceLock<String> = OnceLock::new();
    HOSTNAME
        .get_or_init(|| {
            fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "unknown-host".to_string())
        })
        .clone()
}

/// A token unique across hosts, processes and calls, safe inside a file name.
pub(super) fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    let host: String =
        hostname().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{host}-{}-{nanos:x}-{count}", std::process::id())
}
