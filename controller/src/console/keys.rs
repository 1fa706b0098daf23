//! The console's keys: what each does, and the y/n confirmation that reset and start need.
//!
//! E-stop (Space or F1) acts on the first press in every mode, a pending confirmation
//! included: a question on the screen must never stand between the operator and the stop.
//! Quit leaves the console only; the cell keeps running. Ctrl-C means what it means in
//! that terminal without the console: it ends `takt run` (at the end of the pass), and it
//! ends `takt tui`.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::commands::Command;

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send this command to the controller.
    Send(Command),
    /// Ask "y/n" before sending this command.
    Confirm(Command),
    /// Leave the console (the cell keeps running).
    Quit,
    /// Ctrl-C: what an interrupt means where the console runs (see [`super::run`]).
    Interrupt,
    /// Scroll the event log back (positive) or forward (negative) by lines.
    Scroll(isize),
    /// Show the newest event again.
    ScrollEnd,
    /// Nothing.
    None,
}

/// Lines a PgUp / PgDn moves the event log.
pub const PAGE_LINES: isize = 10;

/// The help line: every key, as the operator reads it at the bottom of the screen.
pub const HELP: &str = "Space/F1 E-STOP │ g start (y/n)  h hold  r resume  n single step  s stop  \
                        c reset (y/n)  q quit console (the cell runs on) │ ↑↓ PgUp PgDn End: event log";

/// The help line in 80 columns.
pub const HELP_SHORT: &str =
    "Space/F1 E-STOP │ g start h hold r resume n step s stop c reset q quit ↑↓ log";

/// Maps a key to its action, outside a confirmation.
pub fn action(key: KeyEvent) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Action::Interrupt;
    }
    match key.code {
        KeyCode::Char(' ') | KeyCode::F(1) => Action::Send(Command::EStop),
        KeyCode::Char('g') => Action::Confirm(Command::Start),
        KeyCode::Char('c') => Action::Confirm(Command::Reset),
        KeyCode::Char('h') => Action::Send(Command::Hold),
        KeyCode::Char('r') => Action::Send(Command::Resume),
        KeyCode::Char('s') => Action::Send(Command::Stop),
        KeyCode::Char('n') => Action::Send(Command::SingleStep),
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        KeyCode::Up => Action::Scroll(1),
        KeyCode::Down => Action::Scroll(-1),
        KeyCode::PageUp => Action::Scroll(PAGE_LINES),
        KeyCode::PageDown => Action::Scroll(-PAGE_LINES),
        KeyCode::End => Action::ScrollEnd,
        _ => Action::None,
    }
}

/// The answer to a pending "y/n": `Some(true)` sends, `Some(false)` cancels; e-stop is
/// handled before this is asked.
pub fn answer(key: KeyEvent) -> Option<bool> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    match key.code {
        KeyCode::Char('y' | 'Y') => Some(true),
        // Anything else cancels: a stray key must never confirm a start.
        _ => Some(false),
    }
}

/// Whether a key is the e-stop key.
pub fn is_estop(key: KeyEvent) -> bool {
    key.kind != KeyEventKind::Release && matches!(key.code, KeyCode::Char(' ') | KeyCode::F(1))
}

/// The question asked before `command`.
pub fn question(command: Command) -> &'static str {
    match command {
        Command::Start => "Start the cell? Motion begins. y / n",
        Command::Reset => "Reset the latch? Motion does not restart. y / n",
        _ => "Send? y / n",
    }
}

/// The command's name as the help line and the log use it.
pub fn command_name(command: Command) -> &'static str {
    match command {
        Command::Start => "start",
        Command::Hold => "hold",
        Command::Resume => "resume",
        Command::Stop => "stop",
        Command::EStop => "e-stop",
        Command::Reset => "reset",
        Command::SingleStep => "step",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn space_and_f1_are_estop_without_a_question() {
        assert_eq!(
            action(key(KeyCode::Char(' '))),
            Action::Send(Command::EStop)
        );
        assert_eq!(action(key(KeyCode::F(1))), Action::Send(Command::EStop));
        assert!(is_estop(key(KeyCode::F(1))));
    }

    #[test]
    fn start_and_reset_ask_first_and_only_y_confirms() {
        assert_eq!(
            action(key(KeyCode::Char('g'))),
            Action::Confirm(Command::Start)
        );
        assert_eq!(
            action(key(KeyCode::Char('c'))),
            Action::Confirm(Command::Reset)
        );
        assert_eq!(answer(key(KeyCode::Char('y'))), Some(true));
        assert_eq!(answer(key(KeyCode::Char('n'))), Some(false));
        assert_eq!(answer(key(KeyCode::Enter)), Some(false));
    }

    #[test]
    fn quit_never_sends_a_command() {
        assert_eq!(action(key(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Action::Interrupt
        );
    }

    #[test]
    fn key_releases_do_nothing() {
        let mut k = key(KeyCode::Char(' '));
        k.kind = KeyEventKind::Release;
        assert_eq!(action(k), Action::None);
        assert!(!is_estop(k));
    }
}
