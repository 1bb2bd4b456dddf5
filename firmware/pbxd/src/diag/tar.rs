//! A minimal POSIX ustar writer: regular files only, in memory. Enough for a support
//! bundle of a few small text files; every system's `tar` reads it (no new dependency).

/// One tar block.
const BLOCK: usize = 512;

/// Why a file cannot go into the archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarError {
    /// The name is empty, absolute, longer than 100 bytes or not plain ASCII.
    #[error("bad file name {0:?} for a tar archive")]
    BadName(String),
    /// The file is too large for the ustar size field (8 GiB).
    #[error("file too large for a tar archive")]
    TooLarge,
}

/// An archive being built in memory.
#[derive(Debug, Default)]
pub struct TarWriter {
    out: Vec<u8>,
}

fn octal(field: &mut [u8], value: u64) {
    // Zero-padded octal, NUL-terminated, filling the field.
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

impl TarWriter {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a regular file (mode 0644) with modification time `mtime` (Unix seconds).
    pub fn add(&mut self, name: &str, data: &[u8], mtime: u64) -> Result<(), TarError> {
        let plain = name.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
        if name.is_empty() || name.len() > 100 || name.starts_with('/') || !plain {
            return Err(TarError::BadName(name.to_owned()));
        }
        let size = u64::try_from(data.len()).map_err(|_| TarError::TooLarge)?;
        if size >= 1 << 33 {
            return Err(TarError::TooLarge);
        }
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], 0o644);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], mtime.min((1 << 33) - 1));
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        // The checksum is computed with its own field read as spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(text.as_bytes());
        self.out.extend_from_slice(&h);
        self.out.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.out.extend(std::iter::repeat_n(0, pad));
        Ok(())
    }

    /// The finished archive (two zero blocks end it).
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0, 2 * BLOCK));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_tar_lists_and_extracts_the_files() {
        let mut t = TarWriter::new();
        t.add("bundle/summary.txt", b"hello\n", 1_700_000_000)
            .expect("add");
        let big = vec![b'x'; 1300];
        t.add("bundle/log.txt", &big, 1_700_000_000).expect("add");
        t.add("bundle/empty", b"", 0).expect("add");
        assert!(t.add("/etc/passwd", b"", 0).is_err());
        assert!(t.add(&"a".repeat(101), b"", 0).is_err());
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("b.tar");
        std::fs::write(&file, t.finish()).expect("write");
        let out = std::process::Command::new("tar")
            .arg("-xvf")
            .arg(&file)
            .arg("-C")
            .arg(dir.path())
            .output()
            .expect("tar runs");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read(dir.path().join("bundle/summary.txt")).expect("read"),
            b"hello\n"
        );
        assert_eq!(
            std::fs::read(dir.path().join("bundle/log.txt")).expect("read"),
            big
        );
        assert_eq!(
            std::fs::read(dir.path().join("bundle/empty")).expect("read"),
            b""
        );
    }
}
