//! `kind = "hub"` end to end without the internet: a tiny HTTP server on 127.0.0.1 serves a fake
//! dataset repository the way the hub does (what hf-hub's client asks for: a `Range: bytes=0-0`
//! request on the resolve URL answered with `etag`, `x-repo-commit` and `Content-Range`, then a
//! `Range: bytes=0-` download), `HF_ENDPOINT` points at it and `HF_HOME` is a scratch directory.
//! A run trains on a parquet file fetched that way, then again offline from the cache; a 404, a
//! download cut short and a server that stops mid-file each end in a clear error.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use crate::data_formats::{documents, text_run_config, write_parquet};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const PATH: &str = "/datasets/someone/stories/resolve/main/train.parquet";

/// How the server answers the file's download (its metadata request is always answered).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Whole,
    /// Content-Length says the whole file, half of it is sent, the connection closes.
    Truncated,
    /// Half the file is sent, then the server stops listening altogether.
    StopsMidFile,
}

struct Server {
    port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(file: Vec<u8>, mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: at most 60 s and 50 connections, then the server ends by itself.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !halt.load(Ordering::SeqCst)
                && std::time::Instant::now() < deadline
                && count.load(Ordering::SeqCst) < 50
            {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        if answer(stream, &file, mode) && mode == Mode::StopsMidFile {
                            return;
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { port, requests, stop, thread: Some(thread) }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request; true when it was a download cut short.
fn answer(mut stream: TcpStream, file: &[u8], mode: Mode) -> bool {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        request.push(byte[0]);
    }
    let request = String::from_utf8_lossy(&request).to_string();
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    let range = request
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("range: bytes=").map(str::to_string))
        .unwrap_or_else(|| "0-".into());
    if path != PATH {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
        return false;
    }
    let (from, to) = range.split_once('-').unwrap();
    let from: usize = from.trim().parse().unwrap();
    let to: usize = to.trim().parse().unwrap_or(file.len() - 1);
    let body = &file[from..=to];
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{to}/{}\r\n\
         etag: \"blob-{}\"\r\nx-repo-commit: {COMMIT}\r\nConnection: close\r\n\r\n",
        body.len(),
        file.len(),
        file.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let metadata_request = to == 0;
    if metadata_request || mode == Mode::Whole {
        let _ = stream.write_all(body);
        return false;
    }
    let _ = stream.write_all(&body[..body.len() / 2]);
    let _ = stream.flush();
    true
}

fn hub_config(name: &str, file: &str) -> String {
    let data = format!(
        "kind = \"hub\"\nrepo = \"someone/stories\"\nfiles = [\"{file}\"]\nvocab_size = 300\n\
         validation_fraction = 0.2\ncache_dir = \"cache\""
    );
    text_run_config(name, &data)
}

fn train(dir: &Path, name: &str, file: &str, endpoint: &str, offline: bool) -> std::process::Output {
    let config = write(dir, &format!("{name}.toml"), &hub_config(name, file));
    let results = dir.join("results");
    let mut command = sweeplaw();
    command
        .args(["train", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"])
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", dir.join("hf"))
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE");
    if offline {
        command.env("HF_HUB_OFFLINE", "1");
    }
    command.output().unwrap()
}

fn parquet_bytes(dir: &Path) -> Vec<u8> {
    let texts = documents(12, 80);
    let refs: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_str())).collect();
    let path = dir.join("source.parquet");
    write_parquet(&path, "text", &refs);
    std::fs::read(path).unwrap()
}

#[test]
fn a_hub_dataset_downloads_trains_and_reruns_offline_from_the_cache() {
    let dir = scratch("hub-loopback");
    let file = parquet_bytes(&dir);
    let server = Server::start(file.clone(), Mode::Whole);
    let out = train(&dir, "online", "train.parquet", &server.endpoint(), false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.requests.load(Ordering::SeqCst), 2, "one metadata request, one download");
    let cached = dir.join("hf/hub/datasets--someone--stories/snapshots").join(COMMIT).join("train.parquet");
    assert_eq!(std::fs::read(&cached).unwrap(), file, "the cache holds the file, byte for byte");
    let metrics = |name: &str| losses(&dir.join("results").join(name).join("runs").join(name).join("metrics.csv"));
    assert_eq!(metrics("online").len(), 6);
    drop(server);
    // Offline, with nothing listening: the cache alone serves the run, with the same losses.
    let out = train(&dir, "offline", "train.parquet", "http://127.0.0.1:9", true);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(metrics("offline"), metrics("online"));
    // Offline and not cached: the error names the file before anything trains.
    let out = train(&dir, "absent", "valid.parquet", "http://127.0.0.1:9", true);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("someone/stories@main/valid.parquet") && stderr(&out).contains("HF_HUB_OFFLINE"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_file_a_cut_download_and_a_vanished_server_are_clear_errors() {
    let dir = scratch("hub-failures");
    let file = parquet_bytes(&dir);
    let server = Server::start(file.clone(), Mode::Whole);
    let out = train(&dir, "missing", "nothing.parquet", &server.endpoint(), false);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("someone/stories@main/nothing.parquet") && message.contains("404"), "{message}");
    drop(server);
    for (name, mode) in [("truncated", Mode::Truncated), ("vanished", Mode::StopsMidFile)] {
        let _ = std::fs::remove_dir_all(dir.join("hf"));
        let server = Server::start(file.clone(), mode);
        let out = train(&dir, name, "train.parquet", &server.endpoint(), false);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        let message = stderr(&out);
        let last = message.trim().lines().last().unwrap_or("");
        assert!(
            last.starts_with("error:") && last.contains("train.parquet") && last.contains("download failed"),
            "{name}: {message}"
        );
        // Nothing half-downloaded is taken for the file.
        let snapshot = dir.join("hf/hub/datasets--someone--stories/snapshots").join(COMMIT).join("train.parquet");
        assert!(!snapshot.exists(), "{name}: a cut download must not land in the cache");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
