//! The filesystem layer every written file goes through: the atomic write (a temporary file
//! beside the target, flushed to disk, then renamed over it), so a kill or a power loss at any
//! instant leaves the previous good version or the whole new one. Records, checkpoints, data
//! caches and job scripts depend on this module; it depends on nothing else in the crate, so it
//! returns its own error (the path and the OS error), which the library's `Error::Io` takes in.
//! It also holds the path arithmetic for a config written into another folder (a ladder's
//! rungs): how to reach, from there, a file the config names relative to itself.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A filesystem operation that failed: the path it was about and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FsError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl FsError {
    fn new(path: &Path, source: std::io::Error) -> Self {
        FsError { path: path.to_path_buf(), source }
    }
}

type Result<T, E = FsError> = std::result::Result<T, E>;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| FsError::new(dir, e))?;
    let tmp = temp_sibling(path);
    if let Err(e) = File::create(&tmp).and_then(|mut f| f.write_all(bytes)) {
        let _ = fs::remove_file(&tmp);
        return Err(FsError::new(path, e));
    }
    commit_temp(&tmp, path)
}

/// A temporary name beside `path`, `.<name>.tmp<pid>-<n>`: unique to this process and call, since
/// the threads of `sweep --runs-per-device` write one summary.csv.
pub fn temp_sibling(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}-{n}", std::process::id()))
}

/// Flushes the written temporary file `tmp` to disk and renames it over `path`, so a kill or a
/// power loss leaves the old file or the whole new one; on failure `tmp` is removed.
pub fn commit_temp(tmp: &Path, path: &Path) -> Result<()> {
    let result = File::open(tmp).and_then(|f| f.sync_all()).and_then(|()| fs::rename(tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(tmp);
        return Err(FsError::new(path, e));
    }
    Ok(())
}

/// Seconds since the Unix epoch.
/// The path from the folder `from` to `to`, both absolute and canonical (`../../configs`
/// from `/p/results/x` to `/p/configs`); `.` when they are the same.
pub fn relative_path(to: &Path, from: &Path) -> PathBuf {
    let (to, from): (Vec<_>, Vec<_>) = (to.components().collect(), from.components().collect());
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut path: PathBuf = std::iter::repeat_n("..", from.len() - common).collect();
    path.extend(&to[common..]);
    if path.as_os_str().is_empty() {
        path.push(".");
    }
    path
}

/// `path` (relative) reached from the folder `base` instead of from where it was: `base`
/// joined to it, each leading `..` of `path` taking away a folder `base` ends with
/// (`../../configs` and `../results/t.json` give `../../results/t.json`). `base`'s folders
/// must be real folders, not links, as those of [`relative_path`]'s are; `path` is kept as
/// written after its leading `..`s.
pub fn join_relative(base: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let mut base = base.to_path_buf();
    let mut rest = path.components().filter(|c| *c != Component::CurDir).peekable();
    while rest.peek() == Some(&Component::ParentDir)
        && matches!(base.components().next_back(), Some(Component::Normal(_)))
    {
        base.pop();
        rest.next();
    }
    let joined = base.join(rest.collect::<PathBuf>());
    let joined = joined.strip_prefix(".").map(Path::to_path_buf).unwrap_or(joined);
    if joined.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        joined
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_writing_one_file_atomically_never_collide() {
        let dir = std::env::temp_dir().join(format!("sweeplaw-atomic-{}", std::process::id()));
        let path = dir.join("summary.csv");
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let path = &path;
                scope.spawn(move || {
                    for i in 0..50 {
                        write_atomic(path, format!("thread {thread} write {i}\n").as_bytes()).unwrap();
                    }
                });
            }
        });
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("thread ") && text.ends_with(" write 49\n"), "{text}");
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("summary.csv")], "no temporary file is left");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_relative_path_is_rewritten_to_reach_the_same_file_from_another_folder() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(relative_path(&p("/p/configs"), &p("/p/results/x")), p("../../configs"));
        assert_eq!(relative_path(&p("/p/results/x"), &p("/p/configs")), p("../results/x"));
        assert_eq!(relative_path(&p("/p"), &p("/p")), p("."));
        let back = p("../../configs");
        assert_eq!(join_relative(&back, &p("../results/t/tuned.json")), p("../../results/t/tuned.json"));
        assert_eq!(join_relative(&back, &p("../../data/*.txt")), p("../../../data/*.txt"));
        assert_eq!(join_relative(&back, &p("./train.bin")), p("../../configs/train.bin"));
        assert_eq!(join_relative(&p("."), &p("data/x/../t.bin")), p("data/x/../t.bin"), "the path's own .. is kept");
        assert_eq!(join_relative(&p("sub"), &p("..")), p("."));
    }
}
