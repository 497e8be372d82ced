//! Graceful stops: the first SIGINT or SIGTERM asks every training loop to finish its current
//! step, write a checkpoint and return [`crate::Error::Interrupted`]; a second one exits at once
//! (status 128 + the signal). The handler only stores the signal number and writes one line,
//! both async-signal-safe.

use std::sync::atomic::{AtomicI32, Ordering};

/// The first signal received, 0 while none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
        let line = b"\nsecond signal: stopping now\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is a static.
        unsafe {
            libc::write(2, line.as_ptr().cast(), line.len());
            libc::_exit(128 + signal);
        }
    }
    let line = b"\nstopping after the current step (a second signal stops at once)\n";
    // SAFETY: as above.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
    }
}

/// Installs the handler for SIGINT and SIGTERM (call once, from `main`, before training).
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler touches only an atomic and async-signal-safe calls.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// The signal that asked for a stop, if one did.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}
