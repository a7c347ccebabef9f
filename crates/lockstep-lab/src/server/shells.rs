//! Shells and commands of one host, and the buffering of a command's output between Receives.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::backend::{ProcessEvent, ProcessHandle};

/// Exit code of a process stopped by Ctrl+C (`STATUS_CONTROL_C_EXIT`, 0xC000013A).
pub const CTRL_C_EXIT: i32 = 0xC000_013Au32 as i32;

/// The shells of one host since its last boot.
#[derive(Debug, Default)]
pub struct ShellTable {
    /// `Backend::boot_epoch` these shells belong to.
    pub epoch: u64,
    /// Shell id to shell.
    pub shells: HashMap<String, Arc<Shell>>,
}

impl ShellTable {
    /// Forgets every shell if the host rebooted since they were created (a rebooted Windows
    /// has none).
    pub fn observe_epoch(&mut self, epoch: u64) {
        if epoch != self.epoch {
            if !self.shells.is_empty() {
                tracing::debug!(
                    shells = self.shells.len(),
                    epoch,
                    "host rebooted: forgetting its shells"
                );
            }
            self.shells.clear();
            self.epoch = epoch;
        }
    }

    /// Deletes the shells no request has touched for longer than `idle_timeout` (WinRS
    /// `IdleTimeout`), killing their processes as Windows does; returns how many.
    pub fn expire_idle(&mut self, idle_timeout: Duration) -> usize {
        let now = Instant::now();
        let before = self.shells.len();
        self.shells.retain(|_, shell| {
            let keep = !shell.idle_longer_than(idle_timeout, now);
            if !keep {
                for (_, command) in shell.commands.lock().unwrap().drain() {
                    command.interrupt();
                }
            }
            keep
        });
        before - self.shells.len()
    }
}

/// One remote shell.
#[derive(Debug)]
pub struct Shell {
    /// Code page output is encoded in.
    pub codepage: u32,
    /// Command id to command.
    pub commands: Mutex<HashMap<String, Arc<Command>>>,
    /// When a request naming the shell last began or ended.
    last_used: Mutex<Instant>,
    /// Requests naming the shell being served now (a Receive long poll is activity).
    in_flight: AtomicUsize,
}

/// A request naming a shell, from its start to its answer: the shell is not idle meanwhile.
#[derive(Debug)]
pub struct InUse(Arc<Shell>);

impl std::ops::Deref for InUse {
    type Target = Shell;
    fn deref(&self) -> &Shell {
        &self.0
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        *self.0.last_used.lock().unwrap() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shell {
    /// A shell whose output is encoded in `codepage`.
    pub fn new(codepage: u32) -> Self {
        Shell {
            codepage,
            commands: Mutex::new(HashMap::new()),
            last_used: Mutex::new(Instant::now()),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Marks the shell in use until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InUse {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        *self.last_used.lock().unwrap() = Instant::now();
        InUse(Arc::clone(self))
    }

    fn idle_longer_than(&self, idle_timeout: Duration, now: Instant) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && now.saturating_duration_since(*self.last_used.lock().unwrap()) > idle_timeout
    }

    /// The command `id`, if the shell has it.
    pub fn command(&self, id: &str) -> Option<Arc<Command>> {
        self.commands.lock().unwrap().get(id).cloned()
    }
}

/// One command and its process.
#[derive(Debug)]
pub struct Command {
    io: tokio::sync::Mutex<CommandIo>,
    control: Mutex<Control>,
}

#[derive(Debug)]
struct Control {
    stdin: Option<mpsc::UnboundedSender<Vec<u8>>>,
    terminate: Option<oneshot::Sender<()>>,
    interrupted: bool,
}

#[derive(Debug)]
struct CommandIo {
    events: mpsc::UnboundedReceiver<ProcessEvent>,
    /// Events taken from the process but not yet delivered (a dropped Receive puts them back).
    pending: VecDeque<ProcessEvent>,
    /// The exit, once the process reported it (delivered with every later Receive).
    exit: Option<i32>,
}

/// What a Receive takes from a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Output (maybe none) and the exit code if the process ended.
    Output {
        /// Output events in order (`Stdout`/`Stderr` only).
        events: Vec<ProcessEvent>,
        /// The exit code, when the process ended.
        exit: Option<i32>,
    },
    /// Nothing arrived within the operation timeout.
    TimedOut,
}

impl Command {
    /// Wraps a started process.
    pub fn new(handle: ProcessHandle) -> Self {
        Command {
            io: tokio::sync::Mutex::new(CommandIo {
                events: handle.events,
                pending: VecDeque::new(),
                exit: None,
            }),
            control: Mutex::new(Control {
                stdin: Some(handle.stdin),
                terminate: handle.terminate,
                interrupted: false,
            }),
        }
    }

    /// Writes `data` to the process's stdin; `end` closes it afterwards.
    pub fn send(&self, data: Vec<u8>, end: bool) {
        let mut control = self.control.lock().unwrap();
        if let Some(stdin) = &control.stdin {
            if !data.is_empty() {
                // A process that stopped reading simply loses the input, as on Windows.
                let _ = stdin.send(data);
            }
        }
        if end {
            control.stdin = None;
        }
    }

    /// Fires the process's terminate signal (Ctrl+C or terminate).
    pub fn interrupt(&self) {
        let mut control = self.control.lock().unwrap();
        control.interrupted = true;
        if let Some(tx) = control.terminate.take() {
            let _ = tx.send(());
        }
    }

    /// The process exited and everything it wrote was delivered: nothing left to Receive.
    pub fn finished(&self) -> bool {
        self.io
            .try_lock()
            .is_ok_and(|io| io.exit.is_some() && io.pending.is_empty() && io.events.is_empty())
    }

    fn interrupted(&self) -> bool {
        self.control.lock().unwrap().interrupted
    }

    /// Takes everything available, waiting up to `timeout` for the first piece.
    pub async fn receive(&self, timeout: Duration) -> Received {
        // One deadline for waiting on a concurrent Receive of the same command and for the
        // output itself: a Receive never waits longer than its OperationTimeout.
        let deadline = tokio::time::Instant::now() + timeout;
        let Ok(mut io) = tokio::time::timeout_at(deadline, self.io.lock()).await else {
            return Received::TimedOut;
        };
        let mut events: Vec<ProcessEvent> = io.pending.drain(..).collect();
        if io.exit.is_none() {
            self.drain_ready(&mut io, &mut events);
            if events.is_empty() && io.exit.is_none() {
                match tokio::time::timeout_at(deadline, io.events.recv()).await {
                    Err(_) => return Received::TimedOut,
                    Ok(None) => io.exit = Some(self.closed_exit_code()),
                    Ok(Some(ProcessEvent::Exit(code))) => io.exit = Some(code),
                    Ok(Some(event)) => {
                        events.push(event);
                        self.drain_ready(&mut io, &mut events);
                    }
                }
            }
        }
        Received::Output {
            events,
            exit: io.exit,
        }
    }

    /// Puts back events a Receive took but could not deliver (the connection was dropped).
    pub async fn put_back(&self, events: Vec<ProcessEvent>) {
        let mut io = self.io.lock().await;
        for event in events.into_iter().rev() {
            io.pending.push_front(event);
        }
    }

    fn drain_ready(&self, io: &mut CommandIo, events: &mut Vec<ProcessEvent>) {
        loop {
            match io.events.try_recv() {
                Ok(ProcessEvent::Exit(code)) => {
                    io.exit = Some(code);
                    break;
                }
                Ok(event) => events.push(event),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    io.exit = Some(self.closed_exit_code());
                    break;
                }
            }
        }
    }

    /// A process that vanished without an exit: killed by a signal, or dropped by the model.
    fn closed_exit_code(&self) -> i32 {
        if self.interrupted() {
            CTRL_C_EXIT
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process() -> (Command, mpsc::UnboundedSender<ProcessEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stdin, _stdin_rx) = mpsc::unbounded_channel();
        let command = Command::new(ProcessHandle {
            events: rx,
            stdin,
            terminate: None,
        });
        (command, tx)
    }

    #[tokio::test]
    async fn receive_returns_everything_available_and_the_exit() {
        let (command, tx) = process();
        tx.send(ProcessEvent::Stdout("a".into())).unwrap();
        tx.send(ProcessEvent::Stderr("b".into())).unwrap();
        tx.send(ProcessEvent::Exit(3)).unwrap();
        let got = command.receive(Duration::from_secs(5)).await;
        assert_eq!(
            got,
            Received::Output {
                events: vec![
                    ProcessEvent::Stdout("a".into()),
                    ProcessEvent::Stderr("b".into())
                ],
                exit: Some(3)
            }
        );
    }

    #[tokio::test]
    async fn silent_process_times_out_then_delivers() {
        let (command, tx) = process();
        assert_eq!(
            command.receive(Duration::from_millis(20)).await,
            Received::TimedOut
        );
        tx.send(ProcessEvent::Stdout("late".into())).unwrap();
        let got = command.receive(Duration::from_millis(20)).await;
        assert_eq!(
            got,
            Received::Output {
                events: vec![ProcessEvent::Stdout("late".into())],
                exit: None
            }
        );
    }

    #[tokio::test]
    async fn concurrent_receives_each_respect_their_timeout() {
        let (command, _tx) = process();
        let command = Arc::new(command);
        let first = {
            let command = command.clone();
            tokio::spawn(async move { command.receive(Duration::from_secs(3600)).await })
        };
        tokio::task::yield_now().await;
        // The second Receive queues behind the first (which holds the command for an hour)
        // but gives up at its own deadline instead of the first one's.
        let second = command.receive(Duration::from_millis(20)).await;
        assert_eq!(second, Received::TimedOut);
        first.abort();
    }

    #[tokio::test]
    async fn put_back_events_come_first() {
        let (command, tx) = process();
        tx.send(ProcessEvent::Stdout("2".into())).unwrap();
        command
            .put_back(vec![ProcessEvent::Stdout("1".into())])
            .await;
        let got = command.receive(Duration::from_millis(20)).await;
        assert_eq!(
            got,
            Received::Output {
                events: vec![
                    ProcessEvent::Stdout("1".into()),
                    ProcessEvent::Stdout("2".into())
                ],
                exit: None
            }
        );
    }

    #[test]
    fn idle_shells_expire_unless_in_use() {
        let mut table = ShellTable::default();
        let busy = Arc::new(Shell::new(437));
        table
            .shells
            .insert("IDLE".into(), Arc::new(Shell::new(437)));
        table.shells.insert("BUSY".into(), busy.clone());
        let guard = busy.enter();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(table.expire_idle(Duration::from_secs(3600)), 0);
        assert_eq!(table.expire_idle(Duration::from_millis(5)), 1);
        assert!(table.shells.contains_key("BUSY"));
        drop(guard);
        assert_eq!(table.expire_idle(Duration::from_millis(5)), 0, "just used");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(table.expire_idle(Duration::from_millis(5)), 1);
        assert!(table.shells.is_empty());
    }

    #[test]
    fn epoch_change_forgets_shells() {
        let mut table = ShellTable::default();
        table.observe_epoch(1);
        table.shells.insert("S".into(), Arc::new(Shell::new(437)));
        table.observe_epoch(1);
        assert_eq!(table.shells.len(), 1);
        table.observe_epoch(2);
        assert!(table.shells.is_empty());
    }
}
