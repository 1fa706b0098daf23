//! `takt ctl`: the control socket from a shell — one command, one status snapshot, or
//! every message as it comes (JSON lines), for scripts and for checking what a given user
//! may do.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::control::client::{CALL_TIMEOUT, Client, ClientError, Connection};
use crate::control::protocol::{BACKLOG_EVENTS, CommandName, Op, ServerMsg};
use crate::control::server::default_socket_path;

/// Arguments of `takt ctl`.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The controller's socket [default: as `takt run`'s].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub action: CtlAction,
}

/// What `takt ctl` does.
#[derive(Debug, clap::Subcommand)]
pub enum CtlAction {
    /// Print one status snapshot (JSON).
    Status,
    /// Print every status snapshot and event as it comes (JSON lines) until the controller
    /// goes away, the last events before it first.
    Watch {
        /// Status snapshots per second.
        #[arg(long, default_value_t = 1.0)]
        hz: f64,
        /// How many of the events before now to print first (0 to 100, the most the
        /// controller keeps).
        #[arg(long, value_name = "N", default_value_t = BACKLOG_EVENTS)]
        backlog: usize,
    },
    /// Latch an e-stop.
    Estop,
    /// Reset after a trip (never restarts motion).
    Reset,
    /// Start the cell.
    Start,
    /// Hold at the next step boundary.
    Hold,
    /// Resume from held.
    Resume,
    /// Stop at the end of the pass.
    Stop,
    /// In held: run one step.
    Step,
}

/// Runs `takt ctl`; exit status 0 when the controller said ok.
pub fn ctl(args: CtlArgs) -> ExitCode {
    match ctl_inner(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("takt ctl: {e}");
            ExitCode::from(2)
        }
    }
}

fn print(msg: &impl serde::Serialize) -> Result<(), ClientError> {
    let line = serde_json::to_string(msg).map_err(|e| ClientError::Protocol(e.to_string()))?;
    println!("{line}");
    Ok(())
}

fn ctl_inner(args: &CtlArgs) -> Result<bool, ClientError> {
    let path = args.socket.clone().unwrap_or_else(default_socket_path);
    let mut c = Client::connect(&path)?;
    let command = match args.action {
        CtlAction::Status => {
            print(&c.status()?)?;
            return Ok(true);
        }
        CtlAction::Watch { hz, backlog } => {
            let reply = c.call(
                Op::Subscribe {
                    status_hz: Some(hz),
                    events: true,
                    backlog: Some(backlog),
                },
                CALL_TIMEOUT,
            )?;
            if !reply.ok {
                print(&reply)?;
                return Ok(false);
            }
            loop {
                match c.recv_timeout(Duration::from_secs(3600)) {
                    Ok(Some(ServerMsg::Bye { reason })) => {
                        eprintln!("takt ctl: {reason}");
                        return Ok(true);
                    }
                    Ok(Some(m)) => print(&m)?,
                    Ok(None) => {}
                    Err(ClientError::Closed) => return Ok(true),
                    Err(e) => return Err(e),
                }
            }
        }
        CtlAction::Estop => CommandName::Estop,
        CtlAction::Reset => CommandName::Reset,
        CtlAction::Start => CommandName::Start,
        CtlAction::Hold => CommandName::Hold,
        CtlAction::Resume => CommandName::Resume,
        CtlAction::Stop => CommandName::Stop,
        CtlAction::Step => CommandName::Step,
    };
    let reply = c.command(command)?;
    print(&reply)?;
    if let Some(e) = &reply.error {
        eprintln!("takt ctl: {}", e.message);
    }
    Ok(reply.ok)
}
