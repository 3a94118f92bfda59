//! SIGINT and SIGTERM end a run cleanly instead of killing it: the first signal is only recorded,
//! and the job notices it at its next row, file or stage, returns
//! [`PipelineError::Interrupted`], and the usual error path does the rest (the transaction is
//! rolled back, the run marked `failed`, a staged archive folder removed); the binary then exits
//! 128 + the signal (130, 143). A second signal ends the process at once, as without a handler.

use std::sync::atomic::{AtomicI32, Ordering};

use crate::PipelineError;

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap, and for a second signal, the default
    // action restored and the signal raised again.
    if RECEIVED.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: signal(2) and raise(3) are async-signal-safe.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

/// Installs the handler for SIGINT and SIGTERM. Call it first thing in `main` of a binary that
/// runs a job; until then the signals keep their default action.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic and async-signal-safe calls; the action
        // struct is fully initialised (zeroed, then the handler and an empty mask set).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The signal received so far, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::Relaxed) {
        0 => None,
        s => Some(s),
    }
}

/// `Err(PipelineError::Interrupted)` once a signal has arrived: the jobs call it at every row,
/// file and stage (one atomic load).
pub fn check() -> Result<(), PipelineError> {
    match received() {
        None => Ok(()),
        Some(signal) => Err(PipelineError::Interrupted { signal }),
    }
}

/// The signal's name for messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
