//! The modem's serial port as an async byte stream: the tty opened non-blocking, set raw
//! (8N1, 115200 baud, no echo, no CR/LF translation) with termios from `nix`, and driven
//! through tokio's `AsyncFd` readiness. Works the same on a USB modem's `/dev/ttyUSB2` and
//! on the emulator's pseudo-terminal.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg};
use tokio::io::unix::AsyncFd;

/// The port could not be opened or set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerialError {
    /// Opening the device failed.
    #[error("cannot open modem port {path}: {source}")]
    Open {
        /// The device.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Setting the line discipline failed (not a tty?).
    #[error("modem port {path} is not a usable serial port: {errno}")]
    Termios {
        /// The device.
        path: PathBuf,
        /// The cause.
        errno: nix::errno::Errno,
    },
}

/// An open, raw, non-blocking serial port.
#[derive(Debug)]
pub struct SerialPort {
    fd: AsyncFd<File>,
}

impl SerialPort {
    /// Open `path` raw at 115200 baud (USB modems ignore the rate; the UART on the
    /// board's header needs it).
    pub fn open(path: &Path) -> Result<SerialPort, SerialError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            // Not our controlling terminal; never block in open or I/O.
            .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK).bits())
            .open(path)
            .map_err(|source| SerialError::Open {
                path: path.to_owned(),
                source,
            })?;
        let termios_err = |errno| SerialError::Termios {
            path: path.to_owned(),
            errno,
        };
        let mut t = termios::tcgetattr(&file).map_err(termios_err)?;
        termios::cfmakeraw(&mut t);
        t.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
        // A pty has no baud rate; ignore a refusal there.
        let _ = termios::cfsetspeed(&mut t, BaudRate::B115200);
        termios::tcsetattr(&file, SetArg::TCSANOW, &t).map_err(termios_err)?;
        // Drop what an earlier user left unread.
        let _ = termios::tcflush(&file, termios::FlushArg::TCIOFLUSH);
        // `AsyncFd::new` is deprecated because a `T` that does not own its descriptor
        // could close it while registered; `File` owns it and lives inside the AsyncFd,
        // so that cannot happen here, and the replacement (`register`) is `unsafe`.
        #[allow(deprecated)]
        let fd = AsyncFd::new(file).map_err(|source| SerialError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(SerialPort { fd })
    }

    /// Read what is there (waits for at least one byte). `Ok(0)` never happens on a tty
    /// that is open; an error means the device went away.
    pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|f| f.get_ref().read(buf)) {
                Ok(Ok(0)) => {
                    // A pty whose other side is not open reads 0 or EIO; wait a bit.
                    guard.clear_ready();
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Write all of `data`.
    pub async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|f| f.get_ref().write(data)) {
                Ok(Ok(0)) => return Err(ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }
}
