//! The emulator behind a real pseudo-terminal: the host opens [`PtyModem::slave_path`] like
//! a serial device, and a background thread moves bytes between the pty master and the
//! [`Ec25`] core, driving its timers.
//!
//! This is a test shell: the core sits in an `Arc<Mutex<..>>` so the test can script the
//! network side while the thread runs.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};

use super::core::Ec25;

/// Longest the thread sleeps before it looks at the core again (script steps from the
/// test, the stop flag).
const TICK: Duration = Duration::from_millis(5);

/// The pty could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PtyError {
    /// A pty system call failed.
    #[error("{what}: {errno}")]
    Sys {
        /// Which call.
        what: &'static str,
        /// The error.
        errno: nix::errno::Errno,
    },
    /// The thread could not be started.
    #[error("cannot start the emulator thread: {0}")]
    Thread(#[from] std::io::Error),
}

fn sys(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> PtyError {
    move |errno| PtyError::Sys { what, errno }
}

/// The emulator's shell clock: the one place this shell reads the time.
#[allow(clippy::disallowed_methods)]
fn shell_now() -> Instant {
    Instant::now()
}

/// An [`Ec25`] on a pseudo-terminal; stops its thread when dropped.
#[derive(Debug)]
pub struct PtyModem {
    modem: Arc<Mutex<Ec25>>,
    slave_path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Held open so the master never sees a hang-up while the host reopens the port, and
    /// so bytes sent before the host opens it wait in the tty's queue.
    _slave: OwnedFd,
}

impl PtyModem {
    /// Open a pty in raw mode and start moving bytes.
    pub fn spawn(modem: Ec25) -> Result<PtyModem, PtyError> {
        let pty = nix::pty::openpty(None, None).map_err(sys("openpty"))?;
        // Raw: no echo, no line editing, no CR/LF translation by the kernel; the modem
        // echoes itself.
        let mut t = tcgetattr(&pty.slave).map_err(sys("tcgetattr"))?;
        cfmakeraw(&mut t);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t).map_err(sys("tcsetattr"))?;
        let slave_path = nix::unistd::ttyname(&pty.slave).map_err(sys("ttyname"))?;
        // Non-blocking writes, so a host that stops reading cannot wedge the thread.
        let flags = fcntl(&pty.master, FcntlArg::F_GETFL).map_err(sys("fcntl"))?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&pty.master, FcntlArg::F_SETFL(flags)).map_err(sys("fcntl"))?;

        let modem = Arc::new(Mutex::new(modem));
        let stop = Arc::new(AtomicBool::new(false));
        let master = File::from(pty.master);
        let thread = {
            let (modem, stop) = (Arc::clone(&modem), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("ec25-pty".into())
                .spawn(move || run(master, &modem, &stop))?
        };
        Ok(PtyModem {
            modem,
            slave_path,
            stop,
            thread: Some(thread),
            _slave: pty.slave,
        })
    }

    /// The device the host opens, e.g. `/dev/pts/3`.
    pub fn slave_path(&self) -> PathBuf {
        self.slave_path.clone()
    }

    /// The core, for script steps and asserts. Output it queues goes out within a few ms.
    pub fn modem(&self) -> MutexGuard<'_, Ec25> {
        lock(&self.modem)
    }

    /// A handle to the core that outlives this borrow.
    pub fn handle(&self) -> Arc<Mutex<Ec25>> {
        Arc::clone(&self.modem)
    }

    /// The module's virtual power-enable input (high = on), as a board's GPIO would
    /// drive it: see [`Ec25::set_power`].
    pub fn power_pin(&self) -> EmulatedPowerPin {
        EmulatedPowerPin(Arc::clone(&self.modem))
    }
}

/// The emulated module's supply input: an embedded-hal output pin, high = on.
#[derive(Debug, Clone)]
pub struct EmulatedPowerPin(Arc<Mutex<Ec25>>);

impl embedded_hal::digital::ErrorType for EmulatedPowerPin {
    type Error = std::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for EmulatedPowerPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        lock(&self.0).set_power(shell_now(), false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        lock(&self.0).set_power(shell_now(), true);
        Ok(())
    }
}

impl Drop for PtyModem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A panic in the thread was a bug already reported on stderr.
            let _ = t.join();
        }
    }
}

/// A panic while holding the lock leaves a usable core (every step is self-contained).
fn lock(m: &Mutex<Ec25>) -> MutexGuard<'_, Ec25> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(mut master: File, modem: &Mutex<Ec25>, stop: &AtomicBool) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        let now = shell_now();
        let wait = lock(modem)
            .poll_timeout()
            .map_or(TICK, |t| t.saturating_duration_since(now).min(TICK));
        let mut events = PollFlags::POLLIN;
        if !pending.is_empty() {
            events |= PollFlags::POLLOUT;
        }
        let mut fds = [PollFd::new(master.as_fd(), events)];
        // TICK is a few ms: it fits.
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let readable = match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN)),
            Err(nix::errno::Errno::EINTR) => false,
            Err(_) => {
                std::thread::sleep(TICK);
                false
            }
        };
        let now = shell_now();
        let mut core = lock(modem);
        // Timers first, so a command sees every state change that was due before it.
        core.handle_timeout(now);
        if readable {
            match master.read(&mut buf) {
                Ok(n) if n > 0 => core.handle_input(now, &buf[..n]),
                // EIO when no slave is open, WouldBlock on a spurious wake-up.
                _ => {}
            }
        }
        while let Some(out) = core.poll_output() {
            pending.extend_from_slice(&out);
        }
        drop(core);
        while !pending.is_empty() {
            match master.write(&pending) {
                Ok(0) => break,
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // WouldBlock: the host is not reading; keep the rest for later.
                Err(_) => break,
            }
        }
    }
}
