//! The control socket's and the journal's options of `takt run`, and starting the server
//! from them.
//!
//! Default paths are best effort: when the default socket is served by another running
//! controller, or the default journal is held by one or cannot be created, the run goes on
//! without it and says so. A path given explicitly must work, or the run does not start.

use std::path::PathBuf;
use std::time::Duration;

use takt_sequences::Program;

use crate::commands::CommandSender;
use crate::status::Inbox;

use super::journal::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, Journal, JournalConfig};
use super::server::{ControlServer, ServerConfig, default_socket_path, group_id};

/// Options of the control socket and the journal.
#[derive(Debug, Clone, clap::Args)]
pub struct ControlArgs {
    /// Serve the control socket here [default: $XDG_RUNTIME_DIR/takt/control.sock, else
    /// /run/takt/control.sock as root, else /tmp/takt-$UID/control.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Serve no control socket.
    #[arg(long, conflicts_with = "socket")]
    pub no_socket: bool,
    /// Give the socket this group (name or gid), so its members can connect (mode 0660).
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// A uid that may command the cell (root and the controller's own uid always may).
    #[arg(long, value_name = "UID")]
    pub operator_uid: Vec<u32>,
    /// A group (name or gid) whose members may command the cell; everyone else who can
    /// open the socket is a viewer.
    #[arg(long, value_name = "GROUP")]
    pub operator_group: Vec<String>,
    /// Append the event journal here [default: $XDG_STATE_HOME/takt/journal.jsonl, else
    /// /var/lib/takt/journal.jsonl as root, else ~/.local/state/takt/journal.jsonl].
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Keep no journal.
    #[arg(long, conflicts_with = "journal")]
    pub no_journal: bool,
    /// Rotate the journal before it passes this size.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BYTES)]
    pub journal_max_bytes: u64,
    /// Rotated journal files kept (PATH.1 newest … PATH.K oldest).
    #[arg(long, value_name = "K", default_value_t = DEFAULT_KEEP)]
    pub journal_keep: usize,
}

/// The default journal path (see [`ControlArgs::journal`]).
pub fn default_journal_path() -> PathBuf {
    let file = "takt/journal.jsonl";
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join(file);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/var/lib").join(file);
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state").join(file),
        None => PathBuf::from(format!("/tmp/takt-{uid}/journal.jsonl")),
    }
}

impl ControlArgs {
    /// Opens the journal and starts the control server for the run.
    pub fn start(
        &self,
        program: &Program,
        period: Duration,
        inbox: Inbox,
        commands: CommandSender,
    ) -> Result<ControlServer, String> {
        let group = |g: &String| group_id(g).ok_or_else(|| format!("no group named {g}"));
        let operator_gids = self
            .operator_group
            .iter()
            .map(group)
            .collect::<Result<Vec<_>, _>>()?;
        let socket_gid = self.socket_group.as_ref().map(group).transpose()?;
        let journal = if self.no_journal {
            None
        } else {
            let explicit = self.journal.is_some();
            let cfg = JournalConfig {
                path: self.journal.clone().unwrap_or_else(default_journal_path),
                max_bytes: self.journal_max_bytes,
                keep: self.journal_keep,
            };
            match Journal::open(cfg) {
                Ok(j) => Some(j),
                Err(e) if explicit => return Err(e.to_string()),
                Err(e) => {
                    tracing::warn!("running without a journal: {e} (give --journal PATH)");
                    None
                }
            }
        };
        let socket =
            (!self.no_socket).then(|| self.socket.clone().unwrap_or_else(default_socket_path));
        let cfg = ServerConfig {
            socket: socket.clone(),
            socket_gid,
            operator_uids: self.operator_uid.clone(),
            operator_gids: operator_gids.clone(),
        };
        // The server needs the queues whichever way it starts: try the socket only when
        // it can work, so a refused default does not cost the run its journal.
        let usable = match &socket {
            Some(path) if self.socket.is_none() => {
                let live = std::os::unix::net::UnixStream::connect(path).is_ok();
                let dir_ok = path
                    .parent()
                    .is_none_or(|d| std::fs::create_dir_all(d).is_ok());
                if live || !dir_ok {
                    tracing::warn!(
                        "serving no control socket: {} is {} (give --socket PATH)",
                        path.display(),
                        if live {
                            "served by another running controller"
                        } else {
                            "not creatable"
                        }
                    );
                }
                !live && dir_ok
            }
            _ => true,
        };
        let cfg = if usable {
            cfg
        } else {
            ServerConfig {
                socket: None,
                ..cfg
            }
        };
        let server = ControlServer::start(cfg, journal, program.clone(), period, inbox, commands)
            .map_err(|e| e.to_string())?;
        if let Some(path) = server.socket() {
            tracing::info!("control socket: {}", path.display());
        }
        Ok(server)
    }
}
