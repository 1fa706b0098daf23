//! The operator console: a terminal UI attached to a running controller through its control
//! socket (`takt tui`), or run beside the cell in the same process (`takt run --tui`).
//!
//! It shows the cell state and step, the axes, the I/O, the buses, the cycle timing, the
//! production counters and the event log, and sends the operator's commands. E-stop is one
//! key (Space or F1) and is never behind a question; start and reset ask y/n; quitting the
//! console never stops the cell. When the link to the controller drops, a banner says so
//! and the console reconnects with a growing delay ([`retry_delay`]); the controller does not
//! depend on the console in any way.
//!
//! The screen is drawn from a [`model::CellModel`] only ([`ui::draw`]), so the layout is
//! tested with ratatui's `TestBackend` on hand-built models at 80×24 and 200×60.

pub mod feed;
pub mod keys;
pub mod model;
#[cfg(test)]
mod snapshots;
pub mod terminal;
pub mod ui;

use std::io;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as TermEvent, KeyEvent};

use crate::commands::Command;
use keys::{Action, command_name};
use model::{CellModel, Link};
use ui::Screen;

/// Something the controller sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A status snapshot, already in display units.
    Status(Box<CellModel>),
    /// One line for the event log.
    Event(String),
    /// The answer to a command: `Err` says why it was refused.
    Reply {
        /// The command answered.
        command: Command,
        /// Accepted, or why not.
        result: Result<(), String>,
    },
}

/// The console's end of the link to a controller.
pub trait Source {
    /// Connects (again); `Err` says why it failed.
    fn connect(&mut self) -> Result<(), String>;
    /// Appends what arrived since the last call, without blocking; `Err` when the link
    /// dropped.
    fn poll(&mut self, out: &mut Vec<Update>) -> Result<(), String>;
    /// Sends a command; its answer arrives later as [`Update::Reply`].
    fn command(&mut self, command: Command) -> Result<(), String>;
}

/// Delay before reconnection attempt `attempts` (1-based): 0.25 s doubling to 5 s, so a
/// controller that restarts is found again quickly and a dead one costs little.
pub fn retry_delay(attempts: u32) -> Duration {
    let ms = 250u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(5));
    Duration::from_millis(ms.min(5000))
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a key means for the console itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Go on.
    Stay,
    /// The operator leaves the console.
    Quit,
    /// Ctrl-C.
    Interrupt,
}

/// The console's state beside the screen: when to try the link again.
#[derive(Debug)]
pub struct Console<S> {
    /// What is drawn.
    pub screen: Screen,
    /// The link.
    pub source: S,
    next_attempt: Instant,
    updates: Vec<Update>,
}

impl<S: Source> Console<S> {
    /// A console on `source`, described as `name` in the header.
    pub fn new(source: S, name: impl Into<String>) -> Console<S> {
        Console {
            screen: Screen::new(name),
            source,
            next_attempt: Instant::now(),
            updates: Vec::new(),
        }
    }

    /// Keeps the link up and takes in what arrived. Never blocks longer than a connect.
    pub fn pump(&mut self, now: Instant) {
        if self.screen.link == Link::Up {
            self.updates.clear();
            let polled = self.source.poll(&mut self.updates);
            for u in std::mem::take(&mut self.updates) {
                self.apply(u);
            }
            if let Err(reason) = polled {
                self.screen.log.push(format!("connection lost: {reason}"));
                self.link_down(reason, 0, now);
            }
            return;
        }
        if now < self.next_attempt {
            if let Link::Down { retry_in_ms, .. } = &mut self.screen.link {
                *retry_in_ms = duration_ms(self.next_attempt.saturating_duration_since(now));
            }
            return;
        }
        match self.source.connect() {
            Ok(()) => {
                if matches!(self.screen.link, Link::Down { .. }) {
                    self.screen
                        .log
                        .push("connection to the controller restored".to_owned());
                }
                self.screen.link = Link::Up;
            }
            Err(reason) => {
                let attempts = match &self.screen.link {
                    Link::Down { attempts, .. } => attempts + 1,
                    _ => 1,
                };
                self.link_down(reason, attempts, now);
            }
        }
    }

    fn link_down(&mut self, reason: String, attempts: u32, now: Instant) {
        let delay = retry_delay(attempts.max(1));
        self.next_attempt = now + delay;
        self.screen.link = Link::Down {
            reason,
            attempts,
            retry_in_ms: duration_ms(delay),
        };
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Status(model) => self.screen.model = *model,
            Update::Event(line) => {
                self.screen.log.push(line);
                // A scrolled-back log stays on the lines the operator is reading.
                if self.screen.scroll > 0 {
                    self.screen.scroll += 1;
                }
            }
            Update::Reply { command, result } => {
                self.screen.notice = Some(match result {
                    Ok(()) => (format!("{}: accepted", command_name(command)), false),
                    Err(why) => (format!("{}: refused: {why}", command_name(command)), true),
                });
            }
        }
    }

    /// Handles one key; says whether the console goes on.
    pub fn key(&mut self, key: KeyEvent) -> KeyOutcome {
        if keys::is_estop(key) {
            self.screen.pending = None;
            self.send(Command::EStop);
            return KeyOutcome::Stay;
        }
        if let Some(command) = self.screen.pending {
            if let Some(yes) = keys::answer(key) {
                self.screen.pending = None;
                if yes {
                    self.send(command);
                } else {
                    self.screen.notice =
                        Some((format!("{}: cancelled", command_name(command)), false));
                }
            }
            return KeyOutcome::Stay;
        }
        match keys::action(key) {
            Action::Send(command) => self.send(command),
            Action::Confirm(command) => self.screen.pending = Some(command),
            Action::Quit => return KeyOutcome::Quit,
            Action::Interrupt => return KeyOutcome::Interrupt,
            Action::Scroll(lines) => {
                let max = self.screen.log.len();
                self.screen.scroll = self.screen.scroll.saturating_add_signed(lines).min(max);
            }
            Action::ScrollEnd => self.screen.scroll = 0,
            Action::None => {}
        }
        KeyOutcome::Stay
    }

    fn send(&mut self, command: Command) {
        if self.screen.link != Link::Up {
            self.screen.notice = Some((
                format!(
                    "NOT CONNECTED: {} not sent{}",
                    command_name(command),
                    if command == Command::EStop {
                        " — use the hardware e-stop"
                    } else {
                        ""
                    }
                ),
                true,
            ));
            return;
        }
        match self.source.command(command) {
            Ok(()) => {
                self.screen.notice = Some((format!("{}: sent", command_name(command)), false));
            }
            Err(reason) => {
                self.screen.notice = Some((
                    format!("{} NOT SENT: {reason}", command_name(command)),
                    true,
                ));
                self.screen.log.push(format!("connection lost: {reason}"));
                self.link_down(reason, 0, Instant::now());
            }
        }
    }
}

/// How often the screen is redrawn when nothing happens (status arrives at a similar rate).
const FRAME: Duration = Duration::from_millis(50);

/// Runs the console on the terminal until the operator quits (or `keep_going` says stop).
/// The terminal is restored on every way out, a panic included.
///
/// Ctrl-C reaches the console as a key (the terminal is in raw mode): with `interrupt`
/// the console calls it and stays up (beside the cell, it ends the run as Ctrl-C did
/// before, and the console shows the cell stopping); without, Ctrl-C leaves the console.
pub fn run<S: Source>(
    source: S,
    name: &str,
    keep_going: impl Fn() -> bool,
    interrupt: Option<&dyn Fn()>,
) -> io::Result<()> {
    let mut console = Console::new(source, name);
    let mut guard = terminal::TerminalGuard::take()?;
    while keep_going() {
        console.pump(Instant::now());
        guard.terminal.draw(|f| ui::draw(f, &console.screen))?;
        let wait = match terminal::wait_for_input(FRAME) {
            terminal::Input::Gone => break,
            terminal::Input::Idle => continue,
            // The bytes are there: crossterm parses them without waiting.
            terminal::Input::Ready => Duration::ZERO,
            terminal::Input::NotStdin => FRAME,
        };
        // Every event parsed from what was read: several keys may arrive in one read.
        let mut first = true;
        while event::poll(if first { wait } else { Duration::ZERO })? {
            first = false;
            let TermEvent::Key(key) = event::read()? else {
                continue;
            };
            match (console.key(key), interrupt) {
                (KeyOutcome::Stay, _) => {}
                (KeyOutcome::Quit, _) | (KeyOutcome::Interrupt, None) => return Ok(()),
                (KeyOutcome::Interrupt, Some(f)) => {
                    f();
                    console.screen.notice = Some((
                        "Ctrl-C: the run ends at the end of this pass (q leaves the console only)"
                            .to_owned(),
                        false,
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    /// A controller that records commands and can be made to drop the link.
    #[derive(Debug, Default)]
    struct Fake {
        up: bool,
        refuse_connect: bool,
        sent: Vec<Command>,
        inbox: Vec<Update>,
    }

    impl Source for Fake {
        fn connect(&mut self) -> Result<(), String> {
            if self.refuse_connect {
                return Err("connection refused".to_owned());
            }
            self.up = true;
            Ok(())
        }
        fn poll(&mut self, out: &mut Vec<Update>) -> Result<(), String> {
            out.append(&mut self.inbox);
            if self.up {
                Ok(())
            } else {
                Err("end of stream".to_owned())
            }
        }
        fn command(&mut self, command: Command) -> Result<(), String> {
            self.sent.push(command);
            Ok(())
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn connected() -> Console<Fake> {
        let mut c = Console::new(Fake::default(), "test");
        c.pump(Instant::now());
        assert_eq!(c.screen.link, Link::Up);
        c
    }

    #[test]
    fn estop_is_sent_at_once_even_while_a_question_is_open() {
        let mut c = connected();
        c.key(key(KeyCode::Char('g')));
        assert_eq!(c.screen.pending, Some(Command::Start));
        c.key(key(KeyCode::Char(' ')));
        assert_eq!(c.source.sent, [Command::EStop]);
        assert_eq!(c.screen.pending, None);
        c.key(key(KeyCode::F(1)));
        assert_eq!(c.source.sent, [Command::EStop, Command::EStop]);
    }

    #[test]
    fn start_and_reset_go_out_only_after_y() {
        let mut c = connected();
        c.key(key(KeyCode::Char('g')));
        c.key(key(KeyCode::Char('n')));
        assert!(c.source.sent.is_empty());
        c.key(key(KeyCode::Char('c')));
        c.key(key(KeyCode::Char('y')));
        c.key(key(KeyCode::Char('g')));
        c.key(key(KeyCode::Char('y')));
        assert_eq!(c.source.sent, [Command::Reset, Command::Start]);
    }

    #[test]
    fn the_other_keys_send_their_command_and_quit_sends_none() {
        let mut c = connected();
        for k in ['h', 'r', 'n', 's'] {
            assert_eq!(c.key(key(KeyCode::Char(k))), KeyOutcome::Stay);
        }
        assert_eq!(c.key(key(KeyCode::Char('q'))), KeyOutcome::Quit);
        assert_eq!(
            c.source.sent,
            [
                Command::Hold,
                Command::Resume,
                Command::SingleStep,
                Command::Stop
            ]
        );
    }

    #[test]
    fn a_dropped_link_shows_and_reconnects_with_growing_delays() {
        let mut c = connected();
        c.source.up = false;
        c.source.refuse_connect = true;
        let t0 = Instant::now();
        c.pump(t0);
        assert!(matches!(c.screen.link, Link::Down { attempts: 0, .. }));
        // Not before the delay.
        c.pump(t0 + Duration::from_millis(100));
        assert!(matches!(c.screen.link, Link::Down { attempts: 0, .. }));
        c.pump(t0 + retry_delay(1));
        assert!(matches!(c.screen.link, Link::Down { attempts: 1, .. }));
        // An e-stop while down is not pretended to be sent.
        c.key(key(KeyCode::Char(' ')));
        assert!(c.source.sent.is_empty());
        assert!(
            c.screen
                .notice
                .as_ref()
                .is_some_and(|(t, bad)| *bad && t.contains("NOT CONNECTED"))
        );
        c.source.refuse_connect = false;
        c.pump(t0 + Duration::from_secs(60));
        assert_eq!(c.screen.link, Link::Up);
        assert!(c.screen.log.window(1, 0).any(|l| l.contains("restored")));
    }

    #[test]
    fn retry_delays_grow_to_a_cap() {
        let d: Vec<_> = (1..=8).map(|a| retry_delay(a).as_millis()).collect();
        assert_eq!(d, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    }

    #[test]
    fn replies_and_events_reach_the_screen() {
        let mut c = connected();
        c.source.inbox.push(Update::Event("e1".to_owned()));
        c.source.inbox.push(Update::Reply {
            command: Command::Start,
            result: Err("not allowed in Aborted".to_owned()),
        });
        c.pump(Instant::now());
        assert_eq!(c.screen.log.len(), 1);
        assert_eq!(
            c.screen.notice,
            Some(("start: refused: not allowed in Aborted".to_owned(), true))
        );
    }
}
