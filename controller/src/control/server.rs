//! The control server of `takt run`: one hub thread beside the cycle, and a Unix domain
//! socket for operators' and viewers' clients.
//!
//! ```text
//!  cycle ──events (bounded)──▶ hub ──▶ journal (JSON lines, fsync policy)
//!        ──status (bounded)──▶  │  ──▶ tracing
//!        ◀─commands (bounded)── │  ──▶ per-client queues (bounded) ──▶ writer threads ──▶ sockets
//!                               ◀── requests (bounded) ◀── reader threads ◀── sockets
//! ```
//!
//! The hub never blocks on a client: it pushes into each client's bounded queue and moves
//! on. When a queue is full the oldest status snapshot is dropped first, then the oldest
//! event; what a client lost is counted and told to it (`dropped`) before its next message.
//! Only the client's own writer thread waits on its socket. A client whose queue holds
//! nothing but unanswered replies (it sends and never reads) is disconnected.
//!
//! **Backlog**: the hub keeps the newest [`BACKLOG_EVENTS`] event messages (the
//! controller's start among them) and queues them for a client that subscribes to events,
//! right after the reply, so a console that attaches mid-run shows what led to now.
//!
//! **Roles** (from `SO_PEERCRED` at connect): root, the controller's own uid, every uid in
//! `operator_uids` and every member (primary or supplementary) of a group in
//! `operator_gids` are operators; everyone else who can open the socket (mode 0660: its
//! owner and group) is a viewer.
//!
//! **Commands** go to the cell through the bounded command queue with a tag; the cycle
//! reports each one back (`EventKind::Command`) with whether its state allowed it. The hub
//! then journals the command with who sent it, `fdatasync`s the journal, and only then
//! replies: an acknowledged command is durable.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use takt_drivers::can::BusState;
use takt_sequences::Program;

use crate::commands::CommandSender;
use crate::status::{Event, EventKind, Inbox, Status};

use super::client::{ClientError, Connection};
use super::journal::Journal;
use super::protocol::{
    BACKLOG_EVENTS, CommandName, ErrorCode, Hello, MAX_LINE_BYTES, Op, PROTOCOL_VERSION, Peer,
    Record, Reply, Request, Role, STATUS_HZ_DEFAULT, STATUS_HZ_MAX, STATUS_HZ_MIN, ServerMsg,
    parse_request,
};
use super::view::View;

/// Messages a client's queue holds before the server drops for it.
pub const CLIENT_QUEUE: usize = 256;
/// Clients served at once; more are refused at connect.
pub const MAX_CLIENTS: usize = 256;
/// How long a command may wait for the cycle's answer before its client is told the
/// controller did not take it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// A client's writer gives up on a client that read nothing for this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the hub looks at status rates and the journal's sync when no event comes.
const HUB_TICK: Duration = Duration::from_millis(2);

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket could not be created.
    #[error("control socket {path}: {source}")]
    Socket {
        /// The path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A live controller already serves this path.
    #[error("control socket {0} is served by another running controller")]
    InUse(PathBuf),
    /// A thread could not be started.
    #[error("cannot start the control server's threads: {0}")]
    Thread(std::io::Error),
}

/// How the server runs.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Serve this socket (none: in-process clients only).
    pub socket: Option<PathBuf>,
    /// Give the socket this group (so its members can connect; mode 0660).
    pub socket_gid: Option<u32>,
    /// Operators besides root and the controller's own uid.
    pub operator_uids: Vec<u32>,
    /// Groups whose members are operators.
    pub operator_gids: Vec<u32>,
}

/// The default socket path: `$XDG_RUNTIME_DIR/takt/control.sock`, else
/// `/run/takt/control.sock` for root, else `/tmp/takt-$UID/control.sock`.
pub fn default_socket_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("takt/control.sock");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        PathBuf::from("/run/takt/control.sock")
    } else {
        PathBuf::from(format!("/tmp/takt-{uid}/control.sock"))
    }
}

/// What the server counted over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerSummary {
    /// Clients that connected.
    pub clients: u64,
    /// Commands the cell took or refused.
    pub commands: u64,
    /// Records journaled.
    pub journaled: u64,
    /// Events dropped for slow clients (summed over clients).
    pub dropped_for_clients: u64,
    /// Journal write or sync failures.
    pub journal_errors: u64,
}

/// A client's outgoing queue, shared by the hub (which pushes and never waits) and the
/// client's writer (which waits for messages).
#[derive(Debug)]
struct Outbound {
    inner: Mutex<OutboundInner>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct OutboundInner {
    msgs: VecDeque<Arc<ServerMsg>>,
    dropped_events: u64,
    dropped_status: u64,
    closed: bool,
}

impl Outbound {
    fn new() -> Arc<Outbound> {
        Arc::new(Outbound {
            inner: Mutex::new(OutboundInner::default()),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, OutboundInner> {
        // A writer that panicked holding the lock left a consistent queue behind (every
        // change is a single push or pop).
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `msg`, dropping by the policy of the module docs when full; returns the
    /// events dropped by this push. Never waits for the client.
    fn push(&self, msg: Arc<ServerMsg>) -> u64 {
        let mut q = self.lock();
        if q.closed {
            return 0;
        }
        let mut dropped = 0;
        if q.msgs.len() >= CLIENT_QUEUE {
            let is = |pred: fn(&ServerMsg) -> bool| q.msgs.iter().position(|m| pred(m));
            if let Some(i) = is(|m| matches!(m, ServerMsg::Status(_))) {
                q.msgs.remove(i);
                q.dropped_status += 1;
            } else if matches!(*msg, ServerMsg::Status(_)) {
                q.dropped_status += 1;
                return 0;
            } else if let Some(i) = is(|m| matches!(m, ServerMsg::Event(_))) {
                q.msgs.remove(i);
                q.dropped_events += 1;
                dropped = 1;
            } else if matches!(*msg, ServerMsg::Event(_)) {
                q.dropped_events += 1;
                return 1;
            } else {
                // Nothing but replies and greetings: the client sends and never reads.
                q.closed = true;
                q.msgs.clear();
                self.ready.notify_all();
                return 0;
            }
        }
        q.msgs.push_back(msg);
        self.ready.notify_one();
        dropped
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next message for the client (a `dropped` notice first when something was
    /// dropped), waiting at most `timeout`; `Err` once closed and drained.
    fn pop(&self, timeout: Option<Duration>) -> Result<Option<Arc<ServerMsg>>, ()> {
        let mut q = self.lock();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if q.dropped_events > 0 || q.dropped_status > 0 {
                let notice = ServerMsg::Dropped {
                    events: q.dropped_events,
                    status: q.dropped_status,
                };
                q.dropped_events = 0;
                q.dropped_status = 0;
                return Ok(Some(Arc::new(notice)));
            }
            if let Some(m) = q.msgs.pop_front() {
                return Ok(Some(m));
            }
            if q.closed {
                return Err(());
            }
            q = match deadline {
                None => self
                    .ready
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    self.ready
                        .wait_timeout(q, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// What reaches the hub from connections.
#[derive(Debug)]
enum HubIn {
    Connect {
        id: u64,
        peer: Peer,
        out: Arc<Outbound>,
        stream: Option<UnixStream>,
    },
    Request {
        id: u64,
        request: Request,
    },
    Gone {
        id: u64,
    },
}

#[derive(Debug)]
struct ClientSlot {
    peer: Peer,
    out: Arc<Outbound>,
    stream: Option<UnixStream>,
    status_every: Option<Duration>,
    next_status: Instant,
    last_status_seq: u64,
    events: bool,
    /// The peer closed its sending side: it gets the replies still owed, then the
    /// connection closes.
    reading_done: bool,
}

#[derive(Debug)]
struct PendingCommand {
    client: u64,
    request: u64,
    command: CommandName,
    since: Instant,
}

/// The running control server.
#[derive(Debug)]
pub struct ControlServer {
    hub: JoinHandle<ServerSummary>,
    accept: Option<JoinHandle<()>>,
    socket: Option<PathBuf>,
    to_hub: SyncSender<HubIn>,
    next_client: Arc<std::sync::atomic::AtomicU64>,
    hello: Hello,
    stop: Arc<AtomicBool>,
}

impl ControlServer {
    /// Starts the hub (and the socket, if configured) for a cell running `program` at
    /// `period`, fed by `inbox`, commanding through `commands`, journaling into `journal`.
    /// The hub ends when the cycle's queues close (the controller was dropped); then call
    /// [`ControlServer::finish`].
    pub fn start(
        cfg: ServerConfig,
        journal: Option<Journal>,
        program: Program,
        period: Duration,
        inbox: Inbox,
        commands: CommandSender,
    ) -> Result<ControlServer, ServerError> {
        let listener = cfg
            .socket
            .as_deref()
            .map(|p| bind(p, cfg.socket_gid))
            .transpose()?;
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            server: format!("takt {}", env!("CARGO_PKG_VERSION")),
            cell: program.cell_name.clone(),
            sequence: program.sequence_name.clone(),
            role: Role::Viewer,
            uid: 0,
            max_line_bytes: MAX_LINE_BYTES,
            status_hz_min: STATUS_HZ_MIN,
            status_hz_max: STATUS_HZ_MAX,
            commands: CommandName::ALL.to_vec(),
        };
        let (to_hub, from_conns) = sync_channel(1024);
        let stop = Arc::new(AtomicBool::new(false));
        let mut hub = Hub {
            view: View::new(program, period),
            journal,
            commands,
            clients: HashMap::new(),
            pending: HashMap::new(),
            next_tag: 1,
            latest: None,
            latest_seq: 0,
            backlog: VecDeque::with_capacity(BACKLOG_EVENTS),
            dropped_events_seen: 0,
            summary: ServerSummary::default(),
        };
        hub.journal_start();
        let hub = std::thread::Builder::new()
            .name("takt-hub".to_owned())
            .spawn(move || hub.run(&inbox, &from_conns))
            .map_err(ServerError::Thread)?;
        let next_client = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let accept = match listener {
            Some(listener) => {
                let ctx = AcceptCtx {
                    to_hub: to_hub.clone(),
                    next_client: Arc::clone(&next_client),
                    hello: hello.clone(),
                    operators: Operators {
                        uids: cfg.operator_uids.clone(),
                        gids: cfg.operator_gids.clone(),
                    },
                    via: cfg
                        .socket
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    stop: Arc::clone(&stop),
                };
                Some(
                    std::thread::Builder::new()
                        .name("takt-accept".to_owned())
                        .spawn(move || accept_loop(&listener, &ctx))
                        .map_err(ServerError::Thread)?,
                )
            }
            None => None,
        };
        Ok(ControlServer {
            hub,
            accept,
            socket: cfg.socket,
            to_hub,
            next_client,
            hello,
            stop,
        })
    }

    /// The socket served, if any.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// An in-process client (an operator, like the controller's own user): the same
    /// messages as over the socket, without serialisation.
    pub fn local(&self, name: &str) -> LocalClient {
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        let out = Outbound::new();
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let peer = Peer {
            uid,
            user: user_name(uid),
            pid: 0,
            role: Role::Operator,
            via: "in-process".to_owned(),
            client: Some(name.to_owned()),
        };
        let hello = Hello {
            role: Role::Operator,
            uid,
            ..self.hello.clone()
        };
        out.push(Arc::new(ServerMsg::Hello(hello.clone())));
        let _ = self.to_hub.send(HubIn::Connect {
            id,
            peer,
            out: Arc::clone(&out),
            stream: None,
        });
        LocalClient {
            id,
            out,
            to_hub: self.to_hub.clone(),
            next_request: 1,
            hello,
            pending: VecDeque::new(),
            greeted: false,
        }
    }

    /// Waits for the hub to end (the controller's queues closed), stops serving the socket
    /// and removes it; returns what the server counted.
    pub fn finish(self) -> ServerSummary {
        let summary = self.hub.join().unwrap_or_default();
        self.stop.store(true, Ordering::SeqCst);
        if let Some(path) = &self.socket {
            // Wake the accept loop so it sees the stop flag.
            let _ = UnixStream::connect(path);
        }
        if let Some(a) = self.accept {
            let _ = a.join();
        }
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
        summary
    }
}

/// An in-process client of the hub; see [`ControlServer::local`].
#[derive(Debug)]
pub struct LocalClient {
    id: u64,
    out: Arc<Outbound>,
    to_hub: SyncSender<HubIn>,
    next_request: u64,
    hello: Hello,
    pending: VecDeque<ServerMsg>,
    greeted: bool,
}

impl LocalClient {
    fn next(&mut self, timeout: Duration) -> Result<Option<ServerMsg>, ClientError> {
        loop {
            match self.out.pop(Some(timeout)) {
                Ok(Some(m)) => {
                    let m = Arc::unwrap_or_clone(m);
                    // The greeting was already handed out by `hello()`.
                    if !self.greeted && matches!(m, ServerMsg::Hello(_)) {
                        self.greeted = true;
                        continue;
                    }
                    return Ok(Some(m));
                }
                Ok(None) => return Ok(None),
                Err(()) => return Err(ClientError::Closed),
            }
        }
    }
}

impl Drop for LocalClient {
    fn drop(&mut self) {
        let _ = self.to_hub.try_send(HubIn::Gone { id: self.id });
    }
}

impl Connection for LocalClient {
    fn hello(&self) -> &Hello {
        &self.hello
    }

    fn send(&mut self, op: Op) -> Result<u64, ClientError> {
        let id = self.next_request;
        self.next_request += 1;
        self.to_hub
            .send(HubIn::Request {
                id: self.id,
                request: Request { id, op },
            })
            .map_err(|_| ClientError::Closed)?;
        Ok(id)
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ServerMsg>, ClientError> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(Some(m));
        }
        self.next(timeout)
    }

    fn call(&mut self, op: Op, timeout: Duration) -> Result<Reply, ClientError> {
        let id = self.send(op)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout(timeout));
            }
            match self.next(left)? {
                Some(ServerMsg::Reply(r)) if r.id == Some(id) => return Ok(r),
                Some(other) => self.pending.push_back(other),
                None => {}
            }
        }
    }
}

struct Hub {
    view: View,
    journal: Option<Journal>,
    commands: CommandSender,
    clients: HashMap<u64, ClientSlot>,
    pending: HashMap<u32, PendingCommand>,
    next_tag: u32,
    latest: Option<Status>,
    latest_seq: u64,
    /// The newest event messages, oldest first, for subscribers that attach later.
    backlog: VecDeque<Arc<ServerMsg>>,
    dropped_events_seen: u64,
    summary: ServerSummary,
}

impl Hub {
    fn run(mut self, inbox: &Inbox, conns: &Receiver<HubIn>) -> ServerSummary {
        loop {
            let first = match inbox.events.recv_timeout(HUB_TICK) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Some(e) = first {
                self.on_event(&e);
            }
            while let Ok(e) = inbox.events.try_recv() {
                self.on_event(&e);
            }
            while let Ok(s) = inbox.status.try_recv() {
                self.on_status(s);
            }
            while let Ok(m) = conns.try_recv() {
                self.on_conn(m);
            }
            self.send_status();
            self.expire_commands();
            if let Some(j) = &mut self.journal
                && j.sync_if_due().is_err()
            {
                self.summary.journal_errors += 1;
            }
        }
        // The cycle is gone: whatever it left, then goodbye.
        while let Ok(s) = inbox.status.try_recv() {
            self.on_status(s);
        }
        for (_, p) in self.pending.drain() {
            if let Some(c) = self.clients.get(&p.client) {
                c.out.push(Arc::new(ServerMsg::Reply(Reply::error(
                    Some(p.request),
                    ErrorCode::ShuttingDown,
                    "the controller stopped before the cell took the command",
                ))));
            }
        }
        let mut stop = Record::new("controller_stop", "the controller stopped");
        self.journal(&mut stop);
        if let Some(j) = &mut self.journal
            && j.sync().is_err()
        {
            self.summary.journal_errors += 1;
        }
        let bye = Arc::new(ServerMsg::Bye {
            reason: "the controller stopped".to_owned(),
        });
        for c in self.clients.values() {
            c.out.push(Arc::clone(&bye));
            c.out.close();
            // The readers end; the writers send what is queued, then end too.
            if let Some(s) = &c.stream {
                let _ = s.shutdown(std::net::Shutdown::Read);
            }
        }
        self.summary
    }

    fn journal_start(&mut self) {
        let mut r = Record::new(
            "controller_start",
            format!(
                "takt {} started: cell {}, sequence {}, pid {}",
                env!("CARGO_PKG_VERSION"),
                self.view.program().cell_name,
                self.view.program().sequence_name,
                std::process::id()
            ),
        );
        self.journal(&mut r);
        if let Some(j) = &mut self.journal
            && j.sync().is_err()
        {
            self.summary.journal_errors += 1;
        }
        self.keep(Arc::new(ServerMsg::Event(Box::new(r))));
    }

    /// Keeps an event message for later subscribers, the oldest going when full.
    fn keep(&mut self, msg: Arc<ServerMsg>) {
        if self.backlog.len() == BACKLOG_EVENTS {
            self.backlog.pop_front();
        }
        self.backlog.push_back(msg);
    }

    /// Journals `r` (numbering it); false when it could not be written.
    fn journal(&mut self, r: &mut Record) -> bool {
        let Some(j) = &mut self.journal else {
            return true;
        };
        match j.append(r) {
            Ok(_) => {
                self.summary.journaled += 1;
                true
            }
            Err(e) => {
                self.summary.journal_errors += 1;
                tracing::error!("{e}");
                false
            }
        }
    }

    fn broadcast_event(&mut self, r: Record) {
        let msg = Arc::new(ServerMsg::Event(Box::new(r)));
        for c in self.clients.values() {
            if c.events {
                self.summary.dropped_for_clients += c.out.push(Arc::clone(&msg));
            }
        }
        self.keep(msg);
    }

    fn on_event(&mut self, e: &Event) {
        let mut r = self.view.record(e);
        let mut reply_to = None;
        if let EventKind::Command { tag, accepted, .. } = e.kind {
            self.summary.commands += 1;
            match self.pending.remove(&tag) {
                Some(p) => {
                    r.by = self.clients.get(&p.client).map(|c| c.peer.clone());
                    reply_to = Some((p, accepted));
                }
                None => {
                    // SAFETY: getuid has no preconditions and cannot fail.
                    let uid = unsafe { libc::getuid() };
                    r.by = Some(Peer {
                        uid,
                        user: user_name(uid),
                        pid: std::process::id() as i32,
                        role: Role::Operator,
                        via: "takt run".to_owned(),
                        client: None,
                    });
                }
            }
            if let (Some(by), Some(command)) = (&r.by, r.command) {
                r.text = format!(
                    "{} by uid {}{} via {}{}: {}",
                    command.as_str(),
                    by.uid,
                    by.user
                        .as_ref()
                        .map_or_else(String::new, |u| format!(" ({u})")),
                    by.via,
                    if by.pid > 0 {
                        format!(" (pid {})", by.pid)
                    } else {
                        String::new()
                    },
                    if r.accepted == Some(true) {
                        "accepted".to_owned()
                    } else {
                        format!(
                            "refused, not allowed while the cell is {}",
                            r.from.as_deref().unwrap_or("?")
                        )
                    }
                );
            }
        }
        log(e, &r);
        let journaled = self.journal(&mut r);
        if let Some((p, accepted)) = reply_to {
            // Durable before acknowledged.
            let synced = journaled
                && self
                    .journal
                    .as_mut()
                    .is_none_or(|j| j.sync().map_err(|e| tracing::error!("{e}")).is_ok());
            let seq = self.journal.is_some().then_some(r.seq);
            let reply = if !synced {
                Reply::error(
                    Some(p.request),
                    ErrorCode::JournalFailed,
                    format!(
                        "the cell {} the command, but the journal could not record it",
                        if accepted { "took" } else { "refused" }
                    ),
                )
            } else if accepted {
                Reply {
                    journal_seq: seq,
                    ..Reply::ok(p.request)
                }
            } else {
                Reply {
                    journal_seq: seq,
                    ..Reply::error(
                        Some(p.request),
                        ErrorCode::NotAllowedInState,
                        format!(
                            "{} is not allowed while the cell is {}",
                            p.command.as_str(),
                            r.from.as_deref().unwrap_or("?")
                        ),
                    )
                }
            };
            if !synced {
                self.summary.journal_errors += 1;
            }
            self.reply(p.client, reply);
        }
        self.broadcast_event(r);
    }

    fn on_status(&mut self, s: Status) {
        if s.dropped_events > self.dropped_events_seen {
            let lost = s.dropped_events - self.dropped_events_seen;
            self.dropped_events_seen = s.dropped_events;
            let mut r = Record::new(
                "events_lost",
                format!(
                    "{lost} events from the cycle were lost (its event queue was full); {} in all",
                    s.dropped_events
                ),
            );
            r.total = Some(s.dropped_events);
            r.cycle_s = Some(s.at.as_micros() as f64 / 1e6);
            tracing::warn!("{}", r.text);
            self.journal(&mut r);
            self.broadcast_event(r);
        }
        self.latest = Some(s);
        self.latest_seq += 1;
    }

    fn send_status(&mut self) {
        let Some(latest) = self.latest else {
            return;
        };
        let now = Instant::now();
        let due = self.clients.values().any(|c| {
            c.status_every.is_some() && now >= c.next_status && c.last_status_seq < self.latest_seq
        });
        if !due {
            return;
        }
        let msg = Arc::new(ServerMsg::Status(Box::new(self.view.status(&latest))));
        for c in self.clients.values_mut() {
            if let Some(every) = c.status_every
                && now >= c.next_status
                && c.last_status_seq < self.latest_seq
            {
                c.out.push(Arc::clone(&msg));
                c.last_status_seq = self.latest_seq;
                // On the grid, unless far behind (then from now).
                c.next_status = (c.next_status + every).max(now);
            }
        }
    }

    fn expire_commands(&mut self) {
        let now = Instant::now();
        let late: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) > COMMAND_TIMEOUT)
            .map(|(&t, _)| t)
            .collect();
        for t in late {
            if let Some(p) = self.pending.remove(&t) {
                self.reply(
                    p.client,
                    Reply::error(
                        Some(p.request),
                        ErrorCode::Busy,
                        format!(
                            "the cell did not take the command within {COMMAND_TIMEOUT:?}; it may still"
                        ),
                    ),
                );
            }
        }
    }

    fn on_conn(&mut self, m: HubIn) {
        match m {
            HubIn::Connect {
                id,
                peer,
                out,
                stream,
            } => {
                self.summary.clients += 1;
                tracing::debug!(
                    "control: uid {} pid {} connected via {} as {:?}",
                    peer.uid,
                    peer.pid,
                    peer.via,
                    peer.role
                );
                self.clients.insert(
                    id,
                    ClientSlot {
                        peer,
                        out,
                        stream,
                        status_every: None,
                        next_status: Instant::now(),
                        last_status_seq: 0,
                        events: false,
                        reading_done: false,
                    },
                );
            }
            HubIn::Gone { id } => {
                if let Some(c) = self.clients.get_mut(&id) {
                    c.reading_done = true;
                    c.status_every = None;
                    c.events = false;
                }
                self.retire_if_done(id);
            }
            HubIn::Request { id, request } => self.on_request(id, request),
        }
    }

    /// Queues a reply to a command; a client that stopped sending is closed once it has
    /// every reply it is owed.
    fn reply(&mut self, client: u64, reply: Reply) {
        if let Some(c) = self.clients.get(&client) {
            c.out.push(Arc::new(ServerMsg::Reply(reply)));
        }
        self.retire_if_done(client);
    }

    fn retire_if_done(&mut self, client: u64) {
        let done = self.clients.get(&client).is_some_and(|c| c.reading_done)
            && !self.pending.values().any(|p| p.client == client);
        if done && let Some(c) = self.clients.remove(&client) {
            // The writer sends what is queued, then ends the connection.
            c.out.close();
        }
    }

    fn on_request(&mut self, client: u64, req: Request) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        // Past events that follow the reply (a subscription's backlog).
        let mut replay: Vec<Arc<ServerMsg>> = Vec::new();
        let reply = match req.op {
            Op::Hello {
                protocol,
                client: name,
            } => {
                if let Some(v) = protocol.filter(|&v| v != PROTOCOL_VERSION) {
                    Reply::error(
                        Some(req.id),
                        ErrorCode::UnsupportedVersion,
                        format!("this controller speaks protocol {PROTOCOL_VERSION}, not {v}"),
                    )
                } else {
                    if name.is_some() {
                        c.peer.client = name;
                    }
                    Reply::ok(req.id)
                }
            }
            Op::Subscribe {
                status_hz,
                events,
                backlog,
            } => {
                let hz = status_hz.unwrap_or(STATUS_HZ_DEFAULT);
                let wanted = backlog.unwrap_or(BACKLOG_EVENTS);
                if !(STATUS_HZ_MIN..=STATUS_HZ_MAX).contains(&hz) {
                    Reply::error(
                        Some(req.id),
                        ErrorCode::BadRequest,
                        format!("status_hz {hz} is outside {STATUS_HZ_MIN} ..= {STATUS_HZ_MAX}"),
                    )
                } else if wanted > BACKLOG_EVENTS {
                    Reply::error(
                        Some(req.id),
                        ErrorCode::BadRequest,
                        format!(
                            "backlog {wanted} is more than the {BACKLOG_EVENTS} past events the \
                             controller keeps"
                        ),
                    )
                } else {
                    c.status_every = Some(Duration::from_secs_f64(1.0 / hz));
                    c.next_status = Instant::now();
                    c.last_status_seq = 0;
                    c.events = events;
                    if events {
                        // The newest `wanted`, oldest first.
                        let skip = self.backlog.len().saturating_sub(wanted);
                        replay = self.backlog.iter().skip(skip).cloned().collect();
                    }
                    Reply {
                        backlog: events.then_some(replay.len()),
                        ..Reply::ok(req.id)
                    }
                }
            }
            Op::Unsubscribe => {
                c.status_every = None;
                c.events = false;
                Reply::ok(req.id)
            }
            Op::Status => match self.latest {
                Some(s) => Reply {
                    status: Some(Box::new(self.view.status(&s))),
                    ..Reply::ok(req.id)
                },
                None => Reply::error(
                    Some(req.id),
                    ErrorCode::Busy,
                    "no status yet: the cell has not run a cycle",
                ),
            },
            Op::Command { command } => {
                if c.peer.role != Role::Operator {
                    Reply::error(
                        Some(req.id),
                        ErrorCode::NotPermitted,
                        format!(
                            "uid {} is a viewer: only operators may command the cell",
                            c.peer.uid
                        ),
                    )
                } else {
                    let tag = self.next_tag;
                    // 0 is `takt run`'s own tag.
                    self.next_tag = self.next_tag.checked_add(1).unwrap_or(1);
                    if self.commands.send_tagged(command.command(), tag) {
                        self.pending.insert(
                            tag,
                            PendingCommand {
                                client,
                                request: req.id,
                                command,
                                since: Instant::now(),
                            },
                        );
                        return;
                    }
                    Reply::error(
                        Some(req.id),
                        ErrorCode::Busy,
                        "the command queue is full (the cycle is behind) or the cell is gone",
                    )
                }
            }
        };
        if let Some(c) = self.clients.get(&client) {
            c.out.push(Arc::new(ServerMsg::Reply(reply)));
            for m in replay {
                self.summary.dropped_for_clients += c.out.push(m);
            }
        }
    }
}

/// Every event also goes to `tracing`, at a level by its weight.
fn log(e: &Event, r: &Record) {
    let t = e.at.as_micros() as f64 / 1e6;
    match e.kind {
        EventKind::Step { .. } | EventKind::AxisState { .. } => {
            tracing::debug!("{t:10.3} s  {}", r.text);
        }
        EventKind::Trip { .. }
        | EventKind::Watchdog(_)
        | EventKind::FollowingError { .. }
        | EventKind::BootTimeout { .. }
        | EventKind::RxOverflow { .. }
        | EventKind::BusState {
            to: BusState::ErrorPassive | BusState::BusOff,
            ..
        } => {
            tracing::warn!("{t:10.3} s  {}", r.text);
        }
        EventKind::ConfigFailed { .. } => tracing::error!("{t:10.3} s  {}", r.text),
        _ => tracing::info!("{t:10.3} s  {}", r.text),
    }
}

/// Binds `path` (mode 0660, group `gid` if given), replacing a stale socket a dead
/// controller left; refuses when a live controller answers there.
fn bind(path: &Path, gid: Option<u32>) -> Result<UnixListener, ServerError> {
    let err = |source| ServerError::Socket {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ServerError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(err)?;
    }
    Ok(listener)
}

#[derive(Debug, Clone)]
struct Operators {
    uids: Vec<u32>,
    gids: Vec<u32>,
}

impl Operators {
    fn role(&self, uid: u32, gid: u32) -> Role {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if uid == 0 || uid == me || self.uids.contains(&uid) {
            return Role::Operator;
        }
        if self.gids.contains(&gid) || groups_of(uid, gid).iter().any(|g| self.gids.contains(g)) {
            return Role::Operator;
        }
        Role::Viewer
    }
}

struct AcceptCtx {
    to_hub: SyncSender<HubIn>,
    next_client: Arc<std::sync::atomic::AtomicU64>,
    hello: Hello,
    operators: Operators,
    via: String,
    stop: Arc<AtomicBool>,
}

fn accept_loop(listener: &UnixListener, ctx: &AcceptCtx) {
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for stream in listener.incoming() {
        if ctx.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            continue;
        };
        if let Err(e) = serve(stream, ctx, &live) {
            tracing::warn!("control: a connection failed: {e}");
        }
    }
}

fn serve(
    stream: UnixStream,
    ctx: &AcceptCtx,
    live: &Arc<std::sync::atomic::AtomicUsize>,
) -> std::io::Result<()> {
    let (uid, gid, pid) = peer_cred(&stream)?;
    if live.load(Ordering::SeqCst) >= MAX_CLIENTS {
        let mut s = &stream;
        let bye = ServerMsg::Bye {
            reason: format!("too many clients (at most {MAX_CLIENTS})"),
        };
        let mut line = serde_json::to_vec(&bye).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _ = s.write_all(&line);
        return Ok(());
    }
    let role = ctx.operators.role(uid, gid);
    let id = ctx.next_client.fetch_add(1, Ordering::Relaxed);
    let peer = Peer {
        uid,
        user: user_name(uid),
        pid,
        role,
        via: ctx.via.clone(),
        client: None,
    };
    let out = Outbound::new();
    out.push(Arc::new(ServerMsg::Hello(Hello {
        role,
        uid,
        ..ctx.hello.clone()
    })));
    let writer_stream = stream.try_clone()?;
    // A client that has not taken a byte for this long is gone as far as takt cares.
    writer_stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let reader_stream = stream.try_clone()?;
    ctx.to_hub
        .send(HubIn::Connect {
            id,
            peer,
            out: Arc::clone(&out),
            stream: Some(stream),
        })
        .map_err(|_| std::io::Error::other("the control hub has stopped"))?;
    live.fetch_add(1, Ordering::SeqCst);
    let w_out = Arc::clone(&out);
    std::thread::Builder::new()
        .name(format!("takt-ctl-w{id}"))
        .spawn(move || write_loop(writer_stream, &w_out))?;
    let to_hub = ctx.to_hub.clone();
    let live = Arc::clone(live);
    std::thread::Builder::new()
        .name(format!("takt-ctl-r{id}"))
        .spawn(move || {
            read_loop(reader_stream, id, &out, &to_hub);
            let _ = to_hub.send(HubIn::Gone { id });
            live.fetch_sub(1, Ordering::SeqCst);
        })?;
    Ok(())
}

fn write_loop(mut stream: UnixStream, out: &Outbound) {
    while let Ok(Some(msg)) = out.pop(None) {
        let Ok(mut line) = serde_json::to_vec(&*msg) else {
            continue;
        };
        line.push(b'\n');
        if stream.write_all(&line).is_err() {
            out.close();
            break;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Reads request lines (each at most [`MAX_LINE_BYTES`]) until the peer closes.
fn read_loop(stream: UnixStream, id: u64, out: &Outbound, to_hub: &SyncSender<HubIn>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::with_capacity(MAX_LINE_BYTES);
    loop {
        line.clear();
        let (n, too_long) = match read_bounded(&mut reader, &mut line) {
            Ok(r) => r,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        if too_long {
            out.push(Arc::new(ServerMsg::Reply(Reply::error(
                None,
                ErrorCode::LineTooLong,
                format!("the line is longer than {MAX_LINE_BYTES} bytes; it was skipped"),
            ))));
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match parse_request(text) {
            Ok(request) => match to_hub.try_send(HubIn::Request { id, request }) {
                Ok(()) => {}
                Err(TrySendError::Full(HubIn::Request { request, .. })) => {
                    out.push(Arc::new(ServerMsg::Reply(Reply::error(
                        Some(request.id),
                        ErrorCode::Busy,
                        "the controller is busy; send the request again",
                    ))));
                }
                Err(_) => return,
            },
            Err(reply) => {
                out.push(Arc::new(ServerMsg::Reply(reply)));
            }
        }
    }
}

/// Reads one line into `line`, keeping at most [`MAX_LINE_BYTES`]; a longer line is read
/// to its end and reported as too long. Returns bytes consumed (0 at end of stream).
fn read_bounded(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut too_long = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((consumed, too_long));
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let n = chunk.len();
        reader.consume(n);
        consumed += n;
        if done {
            return Ok((consumed, too_long));
        }
    }
}

/// The peer's uid, gid and pid (`SO_PEERCRED`).
fn peer_cred(stream: &UnixStream) -> std::io::Result<(u32, u32, i32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which is that large.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((cred.uid, cred.gid, cred.pid))
}

/// The user name of `uid`, if the password database knows it.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: an all-zero passwd is a valid value to be overwritten by getpwuid_r.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r fills `pw` with pointers into `buf`, which outlives their use
    // here; `result` is null or points at `pw`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The supplementary groups of `uid` (whose primary group is `gid`).
fn groups_of(uid: u32, gid: u32) -> Vec<u32> {
    let Some(name) = user_name(uid).and_then(|n| CString::new(n).ok()) else {
        return Vec::new();
    };
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let asked = n;
        // SAFETY: getgrouplist writes at most `n` gids into `groups` and updates `n`.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return groups;
        }
        if n <= asked {
            return Vec::new();
        }
    }
}

/// The gid of group `name` (or a number).
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse() {
        return Some(gid);
    }
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: an all-zero group is a valid value to be overwritten by getgrnam_r.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: getgrnam_r fills `gr` with pointers into `buf`; `result` is null or `gr`.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(gr.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_whole_and_the_next_one_is_read() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.push(b'\n');
        input.extend_from_slice(b"{\"id\":1}\n");
        let mut r = BufReader::with_capacity(64, &input[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_bounded(&mut r, &mut line).unwrap(),
            (MAX_LINE_BYTES + 11, true)
        );
        line.clear();
        assert_eq!(read_bounded(&mut r, &mut line).unwrap(), (9, false));
        assert_eq!(line, b"{\"id\":1}\n");
    }

    #[test]
    fn a_full_queue_drops_status_first_then_events_and_counts_them() {
        let q = Outbound::new();
        let status = || {
            Arc::new(ServerMsg::Bye {
                reason: String::new(),
            })
        };
        let event = || Arc::new(ServerMsg::Event(Box::new(Record::new("test", "e"))));
        // A queue full of events: a new event pushes out the oldest, counted.
        for _ in 0..CLIENT_QUEUE {
            assert_eq!(q.push(event()), 0);
        }
        assert_eq!(q.push(event()), 1);
        let first = q.pop(Some(Duration::ZERO)).unwrap().unwrap();
        assert_eq!(
            *first,
            ServerMsg::Dropped {
                events: 1,
                status: 0
            }
        );
        // Greetings and replies only: the client never reads; it is disconnected.
        let q = Outbound::new();
        for _ in 0..=CLIENT_QUEUE {
            q.push(status());
        }
        assert!(q.pop(Some(Duration::ZERO)).is_err());
    }

    #[test]
    fn an_in_process_client_commands_and_the_reply_waits_for_the_cycle_and_the_journal() {
        use crate::commands::command_channel;
        use crate::status::{EventKind, Status, channels};
        use takt_drivers::can::Timestamp;

        let cell = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
        let program = takt_sequences::check_file(&cell).program.unwrap();
        let dir = std::env::temp_dir().join(format!("takt-hub-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let journal = Journal::open(super::super::journal::JournalConfig::new(
            dir.join("j.jsonl"),
        ))
        .unwrap();
        let (mut outbox, inbox) = channels(64, 4);
        let (commands, queue) = command_channel(4);
        let server = ControlServer::start(
            ServerConfig::default(),
            Some(journal),
            program.clone(),
            Duration::from_millis(1),
            inbox,
            commands,
        )
        .unwrap();
        let mut local = server.local("test");
        assert_eq!(local.hello().role, Role::Operator);
        let mut status = Status::empty(&program);
        status.cycles = 7;
        outbox.status(&status);
        assert!(local.subscribe(Some(50.0), true).unwrap().ok);
        let id = local
            .send(Op::Command {
                command: CommandName::Hold,
            })
            .unwrap();
        // Play the cycle: take the command, refuse it (the cell is not running).
        let queued = loop {
            if let Some(q) = queue.poll() {
                break q;
            }
            std::thread::yield_now();
        };
        assert_eq!(queued.command, crate::commands::Command::Hold);
        outbox.event(
            Timestamp::from_millis(5),
            EventKind::Command {
                command: queued.command,
                tag: queued.tag,
                accepted: false,
                state: crate::safety::CellState::Stopped,
            },
        );
        let mut reply = None;
        let mut saw_status = false;
        let mut saw_event = false;
        while reply.is_none() || !saw_status || !saw_event {
            match local.recv_timeout(Duration::from_secs(5)).unwrap().unwrap() {
                ServerMsg::Reply(r) if r.id == Some(id) => reply = Some(r),
                ServerMsg::Status(s) => saw_status = s.cycles == 7,
                ServerMsg::Event(e) => saw_event = e.kind == "command",
                _ => {}
            }
        }
        let reply = reply.unwrap();
        assert_eq!(
            reply.error.map(|e| e.code),
            Some(ErrorCode::NotAllowedInState)
        );
        let seq = reply.journal_seq.unwrap();
        let (records, bad) = super::super::journal::read(&dir.join("j.jsonl")).unwrap();
        assert!(bad.is_empty());
        let r = records.iter().find(|r| r.seq == seq).unwrap();
        assert_eq!(r.accepted, Some(false));
        assert_eq!(r.by.as_ref().unwrap().via, "in-process");
        // The cycle goes away: the hub says goodbye and ends.
        drop(outbox);
        drop(queue);
        let summary = server.finish();
        assert_eq!(summary.commands, 1);
        assert!(matches!(
            local.recv_timeout(Duration::from_secs(5)).unwrap(),
            Some(ServerMsg::Bye { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_subscriber_that_attaches_late_gets_the_newest_past_events_first() {
        use crate::commands::command_channel;
        use crate::status::{EventKind, channels};
        use takt_drivers::can::Timestamp;

        let cell = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
        let program = takt_sequences::check_file(&cell).program.unwrap();
        let (mut outbox, inbox) = channels(512, 4);
        let (commands, _queue) = command_channel(4);
        let server = ControlServer::start(
            ServerConfig::default(),
            None,
            program,
            Duration::from_millis(1),
            inbox,
            commands,
        )
        .unwrap();
        let total = |m: &ServerMsg| match m {
            ServerMsg::Event(r) if r.kind == "counted" => r.total,
            _ => None,
        };
        let count = |outbox: &mut crate::status::Outbox, n: u64| {
            outbox.event(
                Timestamp::from_millis(n),
                EventKind::Counted {
                    counter: 0,
                    total: n,
                },
            );
        };
        // One watcher from the start, to know when the hub has seen every event.
        let mut early = server.local("early");
        let reply = early.subscribe(Some(0.1), true).unwrap();
        assert_eq!(
            reply.backlog,
            Some(1),
            "the controller's start, kept for later"
        );
        for n in 1..=150 {
            count(&mut outbox, n);
        }
        while early
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .and_then(|m| total(&m))
            != Some(150)
        {}
        let events_after_reply = |c: &mut LocalClient, backlog: Option<usize>| {
            let reply = c
                .call(
                    Op::Subscribe {
                        status_hz: Some(0.1),
                        events: true,
                        backlog,
                    },
                    Duration::from_secs(5),
                )
                .unwrap();
            let n = reply.backlog.unwrap();
            let got: Vec<u64> = (0..n)
                .map(|_| {
                    let m = c.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
                    total(&m).unwrap_or_else(|| panic!("not a past event: {m:?}"))
                })
                .collect();
            got
        };
        // By default every event kept: the newest 100, oldest first (the start fell out).
        let mut late = server.local("late");
        assert_eq!(
            events_after_reply(&mut late, None),
            (51..=150).collect::<Vec<_>>()
        );
        // Then the live ones, without a gap or a repeat.
        count(&mut outbox, 151);
        let next = late.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(total(&next), Some(151));
        let mut few = server.local("few");
        assert_eq!(events_after_reply(&mut few, Some(3)), [149, 150, 151]);
        let mut none = server.local("none");
        assert_eq!(events_after_reply(&mut none, Some(0)), Vec::<u64>::new());
        // No events asked for: no backlog either.
        let r = none
            .call(
                Op::Subscribe {
                    status_hz: Some(0.1),
                    events: false,
                    backlog: None,
                },
                Duration::from_secs(5),
            )
            .unwrap();
        assert!(r.ok && r.backlog.is_none());
        let r = none
            .call(
                Op::Subscribe {
                    status_hz: None,
                    events: true,
                    backlog: Some(BACKLOG_EVENTS + 1),
                },
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(r.error.map(|e| e.code), Some(ErrorCode::BadRequest));
        drop(outbox);
        server.finish();
    }

    #[test]
    fn root_and_the_controllers_own_uid_are_operators() {
        let ops = Operators {
            uids: vec![4242],
            gids: vec![],
        };
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        assert_eq!(ops.role(0, 0), Role::Operator);
        assert_eq!(ops.role(me, 0), Role::Operator);
        assert_eq!(ops.role(4242, 4242), Role::Operator);
        if me != 65534 {
            assert_eq!(ops.role(65534, 65534), Role::Viewer);
        }
        let by_group = Operators {
            uids: vec![],
            gids: vec![65534],
        };
        assert_eq!(by_group.role(65534, 65534), Role::Operator);
    }
}
