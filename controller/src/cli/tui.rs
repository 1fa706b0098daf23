//! `takt tui [--socket PATH]`: the operator console attached to a running controller; and
//! the same console beside the cell in `takt run` ([`Beside`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::console::{self, feed::Attached};
use crate::control::client::{Client, ClientError, Connection};

/// Arguments of `takt tui`.
#[derive(Debug, clap::Args)]
pub struct TuiArgs {
    /// The controller's control socket.
    #[arg(long, value_name = "PATH", default_value_os_t = crate::control::server::default_socket_path())]
    pub socket: PathBuf,
}

/// Runs `takt tui`.
pub fn tui(args: TuiArgs) -> ExitCode {
    if !std::io::stdout().is_terminal() {
        eprintln!("takt tui: stdout is not a terminal; use `takt journal --follow` or the socket");
        return ExitCode::FAILURE;
    }
    // SIGTERM ends the console like q does, so the terminal is given back. SIGHUP keeps
    // its default action: the terminal is gone, there is nothing to give back.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("takt tui: cannot install a signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    let path = args.socket;
    let name = path.display().to_string();
    let source = Attached::new(|| Client::connect(&path));
    match console::run(source, &name, || !stop.load(Ordering::Relaxed), None) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("takt tui: terminal: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `takt run` shows the console: `--tui` asks for it, `--no-tui` refuses it, and
/// otherwise a real-time run whose stdout is a terminal gets it (a `--fast` run ends
/// within seconds and prints its summary, as before).
pub fn wanted(tui: bool, no_tui: bool, fast: bool) -> bool {
    tui || (!no_tui && !fast && std::io::stdout().is_terminal())
}

/// The console running beside the cell in `takt run`, in its own (non real-time) thread.
/// Quitting it leaves the cell running; [`end_beside`] takes it down before the summary
/// is printed.
#[derive(Debug)]
pub struct Beside {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The console beside the cell, process-wide like the terminal it holds.
static BESIDE: Mutex<Option<Beside>> = Mutex::new(None);

/// Set from [`start_beside`] to [`end_beside`]: read by the run loop every cycle, so an
/// atomic rather than the lock.
static BESIDE_UP: AtomicBool = AtomicBool::new(false);

/// Whether the console runs beside the cell (a trip then waits for the operator).
pub fn beside_up() -> bool {
    BESIDE_UP.load(Ordering::Relaxed)
}

/// Starts the console beside the cell; `connect` makes its (in-process) connection.
pub fn start_beside<C, F>(connect: F, name: String)
where
    C: Connection + 'static,
    F: FnMut() -> Result<C, ClientError> + Send + 'static,
{
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let thread = std::thread::Builder::new()
        .name("takt-console".to_owned())
        .spawn(move || {
            let source = Attached::new(connect);
            // Ctrl-C in the console ends the run, as it does without the console.
            let interrupt = || {
                let _ = signal_hook::low_level::raise(signal_hook::consts::SIGINT);
            };
            let go_on = || !flag.load(Ordering::Relaxed);
            if let Err(e) = console::run(source, &name, go_on, Some(&interrupt)) {
                tracing::warn!("the console could not hold the terminal: {e}");
            }
        });
    match thread {
        Ok(thread) => {
            let beside = Beside {
                done,
                thread: Some(thread),
            };
            *BESIDE.lock().unwrap_or_else(PoisonError::into_inner) = Some(beside);
            BESIDE_UP.store(true, Ordering::Relaxed);
        }
        Err(e) => tracing::warn!("cannot start the console: {e}"),
    }
}

/// Ends the console beside the cell, if one runs, and gives the terminal back.
pub fn end_beside() {
    BESIDE_UP.store(false, Ordering::Relaxed);
    let beside = BESIDE.lock().unwrap_or_else(PoisonError::into_inner).take();
    drop(beside);
}

impl Drop for Beside {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
