//! A small blocking client of the control socket, for the TUI, tests and scripts.
//!
//! ```no_run
//! use std::time::Duration;
//! use takt_controller::control::client::{Client, Connection};
//! use takt_controller::control::protocol::{CommandName, ServerMsg};
//!
//! let mut c = Client::connect("/run/takt/control.sock")?;
//! c.subscribe(Some(2.0), true)?;
//! let reply = c.command(CommandName::Estop)?;
//! assert!(reply.ok, "{:?}", reply.error);
//! while let Some(msg) = c.recv_timeout(Duration::from_secs(1))? {
//!     if let ServerMsg::Status(s) = msg {
//!         println!("{} {}", s.cell, s.estop_latched);
//!     }
//! }
//! # Ok::<(), takt_controller::control::client::ClientError>(())
//! ```
//!
//! [`Connection`] is what a screen needs from a controller; [`Client`] implements it over
//! the socket and [`super::server::LocalClient`] in-process, with the same messages.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::protocol::{
    CommandName, Hello, Op, PROTOCOL_VERSION, Reply, Request, ServerMsg, StatusMsg,
};

/// Why talking to the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The controller closed the connection (or went away).
    #[error("the controller closed the connection")]
    Closed,
    /// The controller sent something that is not a protocol message.
    #[error("the controller sent a line that is not a protocol message: {0}")]
    Protocol(String),
    /// The controller speaks another protocol version.
    #[error("the controller speaks protocol {0}, this client {PROTOCOL_VERSION}")]
    Version(u32),
    /// No reply within the time given.
    #[error("no reply from the controller within {0:?}")]
    Timeout(Duration),
}

/// What a client of the controller does, over the socket or in-process.
pub trait Connection {
    /// The controller's greeting: protocol version, cell, this client's role.
    fn hello(&self) -> &Hello;

    /// Sends a request; returns its id.
    fn send(&mut self, op: Op) -> Result<u64, ClientError>;

    /// The next message, waiting at most `timeout`; `None` when nothing came.
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ServerMsg>, ClientError>;

    /// Sends a request and waits (at most `timeout`) for its reply; the messages that
    /// arrive meanwhile are kept and returned by later receives, in order.
    fn call(&mut self, op: Op, timeout: Duration) -> Result<Reply, ClientError>;

    /// Subscribes to status at `status_hz` (None: the default rate) and, if `events`, to
    /// every event, the ones the controller kept from before first (the reply's
    /// `backlog` says how many).
    fn subscribe(&mut self, status_hz: Option<f64>, events: bool) -> Result<Reply, ClientError> {
        self.call(
            Op::Subscribe {
                status_hz,
                events,
                backlog: None,
            },
            CALL_TIMEOUT,
        )
    }

    /// Sends a command and waits for the cell to take or refuse it.
    fn command(&mut self, command: CommandName) -> Result<Reply, ClientError> {
        self.call(Op::Command { command }, CALL_TIMEOUT)
    }

    /// One status snapshot.
    fn status(&mut self) -> Result<StatusMsg, ClientError> {
        let reply = self.call(Op::Status, CALL_TIMEOUT)?;
        match (reply.status, reply.error) {
            (Some(s), _) => Ok(*s),
            (None, Some(e)) => Err(ClientError::Protocol(e.message)),
            (None, None) => Err(ClientError::Protocol(
                "a status reply without a status".to_owned(),
            )),
        }
    }
}

/// How long the convenience calls wait for a reply (a command's reply waits for the
/// cycle and the journal's fsync).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the control socket.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    partial: Vec<u8>,
    pending: VecDeque<ServerMsg>,
    next_id: u64,
    hello: Hello,
}

impl Client {
    /// Connects and reads the controller's greeting.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)?;
        let writer = stream.try_clone()?;
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
            partial: Vec::new(),
            pending: VecDeque::new(),
            next_id: 1,
            hello: Hello {
                protocol: 0,
                server: String::new(),
                cell: String::new(),
                sequence: String::new(),
                role: super::protocol::Role::Viewer,
                uid: 0,
                max_line_bytes: 0,
                status_hz_min: 0.0,
                status_hz_max: 0.0,
                commands: Vec::new(),
            },
        };
        match client.read_message(Some(CALL_TIMEOUT))? {
            Some(ServerMsg::Hello(h)) => {
                if h.protocol != PROTOCOL_VERSION {
                    return Err(ClientError::Version(h.protocol));
                }
                client.hello = h;
                Ok(client)
            }
            Some(ServerMsg::Bye { reason }) => Err(ClientError::Protocol(reason)),
            Some(other) => Err(ClientError::Protocol(format!(
                "expected a hello first, got {other:?}"
            ))),
            None => Err(ClientError::Timeout(CALL_TIMEOUT)),
        }
    }

    /// Writes `line` as it is (a newline is added when missing): for testing the
    /// controller's handling of bad input.
    pub fn send_raw(&mut self, line: &[u8]) -> Result<(), ClientError> {
        self.writer.write_all(line)?;
        if line.last() != Some(&b'\n') {
            self.writer.write_all(b"\n")?;
        }
        Ok(())
    }

    /// The next message, however long it takes.
    pub fn recv(&mut self) -> Result<ServerMsg, ClientError> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(m);
        }
        self.read_message(None)?.ok_or(ClientError::Closed)
    }

    /// Reads one line from the socket; `None` when `timeout` passed first.
    fn read_message(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<ServerMsg>, ClientError> {
        self.reader
            .get_ref()
            .set_read_timeout(timeout.map(|t| t.max(Duration::from_millis(1))))?;
        match self.reader.read_until(b'\n', &mut self.partial) {
            Ok(0) => Err(ClientError::Closed),
            Ok(_) if self.partial.last() != Some(&b'\n') => Err(ClientError::Closed),
            Ok(_) => {
                let line = std::mem::take(&mut self.partial);
                serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(|e| ClientError::Protocol(format!("{e}: {}", lossy(&line))))
            }
            // Whatever arrived before the timeout stays in `partial` for the next read.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn lossy(line: &[u8]) -> String {
    String::from_utf8_lossy(line).trim_end().to_owned()
}

impl Connection for Client {
    fn hello(&self) -> &Hello {
        &self.hello
    }

    fn send(&mut self, op: Op) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&Request { id, op })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        Ok(id)
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ServerMsg>, ClientError> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(Some(m));
        }
        self.read_message(Some(timeout))
    }

    fn call(&mut self, op: Op, timeout: Duration) -> Result<Reply, ClientError> {
        let id = self.send(op)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout(timeout));
            }
            match self.read_message(Some(left))? {
                Some(ServerMsg::Reply(r)) if r.id == Some(id) => return Ok(r),
                Some(other) => self.pending.push_back(other),
                None => {}
            }
        }
    }
}
