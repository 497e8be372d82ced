//! Tests of `claim`.

use super::*;
use std::sync::Barrier;

const STALE: Duration = Duration::from_millis(200);
const BEAT: Duration = Duration::from_millis(20);
/// Comfortably past `STALE`.
const PAST_STALE: Duration = Duration::from_millis(300);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("sweeplaw-claim-{name}-{pid}-{n}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn run_dir(&self) -> PathBuf {
        self.0.join("runs").join("r000")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Claim {
    /// Stops the heartbeat thread, as if this worker were frozen (SIGSTOP).
    fn freeze(&mut self) {
        self.stop_heartbeat();
    }
}

fn cfg(worker: &str) -> ClaimConfig {
    ClaimConfig { worker: worker.to_string(), stale_after: STALE, heartbeat_every: BEAT }
}

fn claimed(outcome: ClaimOutcome) -> Claim {
    match outcome {
        ClaimOutcome::Claimed(claim) => claim,
        ClaimOutcome::HeldByOther { worker, age } => {
            panic!("expected a claim, held by {worker} for {age:?}")
        }
    }
}

fn held_by(outcome: ClaimOutcome) -> (String, Duration) {
    match outcome {
        ClaimOutcome::HeldByOther { worker, age } => (worker, age),
        ClaimOutcome::Claimed(claim) => panic!("unexpected claim by {}", claim.worker()),
    }
}

fn read_record(run_dir: &Path) -> ClaimRecord {
    serde_json::from_slice(&fs::read(run_dir.join(CLAIM_FILE)).unwrap()).unwrap()
}

/// Writes the claim of a worker whose last heartbeat was `age` ago (a dead worker).
fn write_old_claim(run_dir: &Path, worker: &str, age: Duration) -> ClaimRecord {
    fs::create_dir_all(run_dir).unwrap();
    let mut record = ClaimRecord::new(worker);
    record.heartbeat_unix -= age.as_secs_f64();
    record.claimed_at_unix = record.heartbeat_unix;
    fs::write(run_dir.join(CLAIM_FILE), encode(&record, run_dir).unwrap()).unwrap();
    record
}

fn age_mtime(path: &Path, age: Duration) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn claim_is_exclusive_until_released() {
    let scratch = Scratch::new("exclusive");
    let run = scratch.run_dir();
    let first = claimed(try_claim(&run, &cfg("w1")).unwrap());
    assert_eq!(read_record(&run).worker, "w1");
    let (worker, age) = held_by(try_claim(&run, &cfg("w2")).unwrap());
    assert_eq!(worker, "w1");
    assert!(age < STALE, "fresh claim aged {age:?}");
    match inspect_claim(&run, STALE).unwrap() {
        ClaimState::Live { worker, age } => assert!(worker == "w1" && age < STALE),
        other => panic!("expected a live claim, got {other:?}"),
    }
    first.release().unwrap();
    assert!(!run.join(CLAIM_FILE).exists());
    assert_eq!(inspect_claim(&run, STALE).unwrap(), ClaimState::Free);
    let second = claimed(try_claim(&run, &cfg("w2")).unwrap());
    assert_eq!(read_record(&run).worker, "w2");
    assert!(second.still_ours());
    second.release().unwrap();
    let leftovers: Vec<_> = fs::read_dir(&run).unwrap().collect();
    assert!(leftovers.is_empty(), "files left behind: {leftovers:?}");
}

#[test]
fn heartbeat_keeps_claim_fresh_past_stale_after() {
    let scratch = Scratch::new("fresh");
    let run = scratch.run_dir();
    let claim = claimed(try_claim(&run, &cfg("w1")).unwrap());
    let claimed_at = read_record(&run).claimed_at_unix;
    std::thread::sleep(STALE * 3);
    let (worker, age) = held_by(try_claim(&run, &cfg("w2")).unwrap());
    assert_eq!(worker, "w1");
    assert!(age < STALE, "heartbeat aged {age:?}");
    let record = read_record(&run);
    assert_eq!(record.claimed_at_unix, claimed_at);
    assert!(record.heartbeat_unix - claimed_at > 2.0 * STALE.as_secs_f64());
    assert!(claim.still_ours());
    claim.release().unwrap();
}

#[test]
fn dead_workers_claim_is_taken_over_after_stale_after() {
    let scratch = Scratch::new("dead");
    let run = scratch.run_dir();
    // Heartbeat just inside stale_after: still held.
    write_old_claim(&run, "dead", STALE / 2);
    assert_eq!(held_by(try_claim(&run, &cfg("w2")).unwrap()).0, "dead");
    write_old_claim(&run, "dead", STALE + Duration::from_millis(1));
    assert!(matches!(inspect_claim(&run, STALE).unwrap(), ClaimState::Stale { .. }));
    let claim = claimed(try_claim(&run, &cfg("w2")).unwrap());
    assert_eq!(read_record(&run).worker, "w2");
    assert!(!run.join(TAKEOVER_LOCK_FILE).exists());
    claim.release().unwrap();
}

#[test]
fn claim_with_a_heartbeat_in_the_future_is_taken_over_once_unchanged_for_stale_after() {
    // Long enough that a slow machine cannot oversleep a check into the next phase.
    let stale = Duration::from_millis(1500);
    let cfg = ClaimConfig { stale_after: stale, ..cfg("w2") };
    let scratch = Scratch::new("future");
    let run = scratch.run_dir();
    // A holder on another host whose clock runs a day ahead of ours, then silent.
    fs::create_dir_all(&run).unwrap();
    let mut record = ClaimRecord::new("ahead");
    record.hostname = "another-host".into();
    record.heartbeat_unix += 86_400.0;
    fs::write(run.join(CLAIM_FILE), encode(&record, &run).unwrap()).unwrap();
    assert_eq!(held_by(try_claim(&run, &cfg).unwrap()).0, "ahead");
    std::thread::sleep(stale * 6 / 10);
    assert_eq!(held_by(try_claim(&run, &cfg).unwrap()).0, "ahead");
    // A changed heartbeat starts the count again: alive, past stale_after since the first sight.
    record.heartbeat_unix += 10.0;
    fs::write(run.join(CLAIM_FILE), encode(&record, &run).unwrap()).unwrap();
    assert_eq!(held_by(try_claim(&run, &cfg).unwrap()).0, "ahead");
    std::thread::sleep(stale * 6 / 10);
    assert_eq!(held_by(try_claim(&run, &cfg).unwrap()).0, "ahead", "the heartbeat moved: alive");
    std::thread::sleep(stale * 6 / 10);
    let claim = claimed(try_claim(&run, &cfg).unwrap());
    assert_eq!(read_record(&run).worker, "w2");
    claim.release().unwrap();
}

#[test]
fn claim_dropped_while_unwinding_goes_stale_and_is_taken_over() {
    let scratch = Scratch::new("unwind");
    let run = scratch.run_dir();
    let panicked = std::panic::catch_unwind(|| {
        let _claim = claimed(try_claim(&run, &cfg("w1")).unwrap());
        panic!("training failed");
    });
    assert!(panicked.is_err());
    assert!(run.join(CLAIM_FILE).exists(), "drop must not remove the claim");
    assert_eq!(held_by(try_claim(&run, &cfg("w2")).unwrap()).0, "w1");
    std::thread::sleep(PAST_STALE);
    let claim = claimed(try_claim(&run, &cfg("w2")).unwrap());
    claim.release().unwrap();
}

#[test]
fn frozen_worker_learns_it_was_taken_over() {
    let scratch = Scratch::new("frozen");
    let run = scratch.run_dir();
    let mut frozen = claimed(try_claim(&run, &cfg("w1")).unwrap());
    frozen.freeze();
    std::thread::sleep(PAST_STALE);
    let thief = claimed(try_claim(&run, &cfg("w2")).unwrap());
    assert!(!frozen.still_ours());
    assert!(thief.still_ours());
    frozen.release().unwrap();
    assert_eq!(read_record(&run).worker, "w2", "release removed the new owner's claim");
    thief.release().unwrap();
}

#[test]
fn frozen_worker_not_taken_over_keeps_its_claim() {
    let scratch = Scratch::new("resume");
    let run = scratch.run_dir();
    let mut frozen = claimed(try_claim(&run, &cfg("w1")).unwrap());
    frozen.freeze();
    std::thread::sleep(PAST_STALE);
    assert!(frozen.still_ours(), "nobody took it; the overdue check refreshes it");
    let (worker, age) = held_by(try_claim(&run, &cfg("w2")).unwrap());
    assert_eq!(worker, "w1");
    assert!(age < STALE);
    frozen.release().unwrap();
}

#[test]
fn heartbeat_thread_notices_a_replaced_claim() {
    let scratch = Scratch::new("replaced");
    let run = scratch.run_dir();
    let claim = claimed(try_claim(&run, &cfg("w1")).unwrap());
    let other = ClaimRecord::new("w2");
    let temp = write_temp(&run.join(CLAIM_FILE), &other).unwrap();
    fs::rename(temp, run.join(CLAIM_FILE)).unwrap();
    std::thread::sleep(BEAT * 5);
    assert!(!claim.still_ours());
    // serde_json may round the last bit of an f64, so compare token and times to 1 ms.
    let unchanged =
        |found: ClaimRecord| found.token == other.token && (found.heartbeat_unix - other.heartbeat_unix).abs() < 1e-3;
    assert!(unchanged(read_record(&run)), "heartbeat overwrote the new claim");
    claim.release().unwrap();
    assert!(unchanged(read_record(&run)), "release removed the new claim");
}

/// `threads` workers race `try_claim` on `run`; returns the winners' worker names. The race
/// allows claims 10 s before they go stale (not [`STALE`]): on a loaded machine a thread can be
/// paused for 200 ms, and a winner's young claim would then rightly be taken over by another.
fn race(run: &Path, threads: usize) -> Vec<String> {
    let racer = |name: &str| ClaimConfig { stale_after: Duration::from_secs(10), ..cfg(name) };
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    try_claim(run, &racer(&format!("w{i}"))).unwrap()
                })
            })
            .collect();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        outcomes
            .into_iter()
            .filter_map(|outcome| match outcome {
                ClaimOutcome::Claimed(claim) => Some(claim.worker().to_string()),
                ClaimOutcome::HeldByOther { .. } => None,
            })
            .collect()
    })
}

#[test]
fn racing_workers_on_a_free_run_yield_one_winner() {
    for round in 0..50 {
        let scratch = Scratch::new("race-free");
        let run = scratch.run_dir();
        let winners = race(&run, 8);
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(read_record(&run).worker, winners[0]);
    }
}

#[test]
fn racing_workers_on_a_stale_run_yield_one_winner() {
    for round in 0..50 {
        let scratch = Scratch::new("race-stale");
        let run = scratch.run_dir();
        write_old_claim(&run, "dead", Duration::from_secs(3600));
        let winners = race(&run, 8);
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(read_record(&run).worker, winners[0]);
        assert!(!run.join(TAKEOVER_LOCK_FILE).exists(), "round {round}: lock left");
    }
}

#[test]
fn racing_workers_on_a_live_run_all_lose() {
    let scratch = Scratch::new("race-live");
    let run = scratch.run_dir();
    let owner = claimed(try_claim(&run, &cfg("owner")).unwrap());
    for round in 0..10 {
        assert!(race(&run, 8).is_empty(), "round {round}");
    }
    assert!(owner.still_ours());
    owner.release().unwrap();
}

#[test]
fn garbage_claim_is_held_while_young_and_taken_over_once_old() {
    let truncated = br#"{ "worker": "w9", "pid": 12, "hostn"#.to_vec();
    for content in [truncated, Vec::new(), vec![0xff, 0x00, 0x7b]] {
        let scratch = Scratch::new("garbage");
        let run = scratch.run_dir();
        fs::create_dir_all(&run).unwrap();
        fs::write(run.join(CLAIM_FILE), &content).unwrap();
        let (worker, _) = held_by(try_claim(&run, &cfg("w2")).unwrap());
        assert_eq!(worker, UNREADABLE_WORKER);
        age_mtime(&run.join(CLAIM_FILE), PAST_STALE);
        let claim = claimed(try_claim(&run, &cfg("w2")).unwrap());
        assert_eq!(read_record(&run).worker, "w2");
        claim.release().unwrap();
    }
}

#[test]
fn takeover_lock_blocks_while_fresh_and_is_broken_once_old() {
    let scratch = Scratch::new("lock");
    let run = scratch.run_dir();
    write_old_claim(&run, "dead", Duration::from_secs(3600));
    let lock = run.join(TAKEOVER_LOCK_FILE);
    fs::write(&lock, encode(&ClaimRecord::new("taker"), &lock).unwrap()).unwrap();
    assert_eq!(held_by(try_claim(&run, &cfg("w2")).unwrap()).0, "taker");
    fs::write(&lock, b"{\"work").unwrap(); // the taker died mid-write...
    age_mtime(&lock, PAST_STALE); // ...long ago
    let claim = claimed(try_claim(&run, &cfg("w2")).unwrap());
    assert!(!lock.exists());
    claim.release().unwrap();
}

#[test]
fn remove_if_never_removes_an_unexpected_file() {
    let scratch = Scratch::new("remove-if");
    let path = scratch.0.join("file.json");
    let record = ClaimRecord::new("w1");
    fs::write(&path, encode(&record, &path).unwrap()).unwrap();
    let other_token = |seen: &Observed| seen.token() == Some("other");
    assert_eq!(remove_if(&path, "t", other_token).unwrap(), Removal::Kept);
    assert_eq!(fs::read(&path).unwrap(), encode(&record, &path).unwrap());
    let own_token = |seen: &Observed| seen.token() == Some(record.token.as_str());
    assert_eq!(remove_if(&path, "t", own_token).unwrap(), Removal::Removed);
    assert_eq!(remove_if(&path, "t", own_token).unwrap(), Removal::Absent);
    assert_eq!(fs::read_dir(&scratch.0).unwrap().count(), 0);
}

#[test]
fn config_is_validated_and_errors_name_the_path() {
    let scratch = Scratch::new("config");
    let run = scratch.run_dir();
    let slow = ClaimConfig { heartbeat_every: STALE, ..cfg("w1") };
    let message = try_claim(&run, &slow).unwrap_err().to_string();
    assert!(message.contains("claim.json") && message.contains("half"), "{message}");
    let zero = ClaimConfig { heartbeat_every: Duration::ZERO, ..cfg("w1") };
    assert!(try_claim(&run, &zero).is_err());
    assert!(try_claim(&run, &ClaimConfig::new("")).is_err());
    let defaults = ClaimConfig::default();
    assert_eq!(defaults.stale_after, Duration::from_secs(120));
    assert!(defaults.worker.ends_with(&format!(":{}", std::process::id())));
    // A run dir that cannot be created (a file is in the way).
    fs::write(scratch.0.join("runs"), b"").unwrap();
    let message = try_claim(&run, &cfg("w1")).unwrap_err().to_string();
    assert!(message.contains("runs"), "{message}");
}
