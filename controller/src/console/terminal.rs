//! Taking the terminal over and giving it back: raw mode and the alternate screen while the
//! console runs, the operator's shell exactly as it was afterwards — on a normal exit, on
//! an error, and on a panic (the panic hook restores first, so the message is readable).

use std::io::{self, Stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// Set while the console holds the terminal: log output to stderr is held back then
/// (it would scribble over the screen; the events are in the console's log and the journal).
static HELD: AtomicBool = AtomicBool::new(false);

/// Whether the console holds the terminal now.
pub fn held() -> bool {
    HELD.load(Ordering::Relaxed)
}

/// The terminal while the console holds it; dropping it gives the terminal back.
#[derive(Debug)]
pub struct TerminalGuard {
    /// The ratatui terminal on stdout.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

/// Puts the terminal back: leave the alternate screen, show the cursor, cooked mode.
/// Idempotent, so both the guard and the panic hook may call it.
fn restore() {
    if HELD.swap(false, Ordering::Relaxed) {
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
    }
}

impl TerminalGuard {
    /// Takes the terminal over.
    pub fn take() -> io::Result<TerminalGuard> {
        install_panic_hook();
        enable_raw_mode()?;
        HELD.store(true, Ordering::Relaxed);
        if let Err(e) = execute!(io::stdout(), EnterAlternateScreen) {
            restore();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(mut terminal) => {
                let _ = terminal.hide_cursor();
                let _ = terminal.clear();
                Ok(TerminalGuard { terminal })
            }
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Chains a hook that restores the terminal before the previous hook prints the panic.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// What the keyboard side of the terminal has for the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Bytes to read.
    Ready,
    /// stdin is not the terminal (crossterm reads /dev/tty): ask crossterm, with the wait.
    NotStdin,
    /// Nothing within the wait.
    Idle,
    /// The terminal hung up (the SSH session or the tmux pane went away).
    Gone,
}

/// Waits up to `timeout` for keyboard input on stdin, noticing a hang-up.
///
/// Why not only crossterm's `event::poll`: on a hung-up terminal it reads end-of-file in
/// an endless loop inside one call (crossterm 0.28), so the console would spin a core
/// and never see that it should end. `poll(2)` reports the hang-up first.
pub fn wait_for_input(timeout: std::time::Duration) -> Input {
    use std::os::fd::AsRawFd;
    let fd = io::stdin().as_raw_fd();
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(fd) } != 1 {
        return Input::NotStdin;
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n <= 0 {
        // A timeout, or EINTR from a signal (the caller checks its flags again).
        return Input::Idle;
    }
    if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Input::Gone
    } else {
        Input::Ready
    }
}

/// A `tracing` writer for stderr that stays silent while the console holds the terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietWhileHeld;

impl io::Write for QuietWhileHeld {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if held() {
            Ok(buf.len())
        } else {
            io::stderr().write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QuietWhileHeld {
    type Writer = QuietWhileHeld;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_gives_the_terminal_back_before_the_message() {
        install_panic_hook();
        // As if the console held the terminal (raw mode cannot be entered without one).
        HELD.store(true, Ordering::Relaxed);
        let result = std::panic::catch_unwind(|| panic!("a bug in the console"));
        assert!(result.is_err());
        assert!(!held(), "the panic hook did not restore the terminal");
    }
}
