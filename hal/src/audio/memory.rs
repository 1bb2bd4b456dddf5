//! In-memory audio port: frames written are collected, frames to read are queued by the
//! test (or the emulator's virtual phone).

use std::collections::VecDeque;

use super::{check_len, AudioConfig, AudioError, AudioPort};

/// An [`AudioPort`] over two queues. Reading with nothing queued gives silence (the
/// line is quiet), counted in [`MemoryAudio::underruns`].
#[derive(Debug, Clone, Default)]
pub struct MemoryAudio {
    config: AudioConfig,
    to_read: VecDeque<Vec<i16>>,
    written: Vec<Vec<i16>>,
    underruns: u64,
}

impl MemoryAudio {
    /// An empty port.
    #[must_use]
    pub fn new(config: AudioConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Queues audio "from the phone"; cut into frames, the last one padded with silence.
    pub fn push_input(&mut self, samples: &[i16]) {
        let n = self.config.frame_len();
        for chunk in samples.chunks(n) {
            let mut f = chunk.to_vec();
            f.resize(n, 0);
            self.to_read.push_back(f);
        }
    }

    /// Frames written so far, oldest first; drains them.
    pub fn take_output(&mut self) -> Vec<Vec<i16>> {
        std::mem::take(&mut self.written)
    }

    /// Reads that found no queued frame.
    #[must_use]
    pub fn underruns(&self) -> u64 {
        self.underruns
    }
}

impl AudioPort for MemoryAudio {
    type Error = AudioError;

    fn frame_len(&self) -> usize {
        self.config.frame_len()
    }

    fn read_frame(&mut self, out: &mut [i16]) -> Result<(), AudioError> {
        check_len(self.config.frame_len(), out.len())?;
        match self.to_read.pop_front() {
            Some(f) => out.copy_from_slice(&f),
            None => {
                self.underruns += 1;
                out.fill(0);
            }
        }
        Ok(())
    }

    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        check_len(self.config.frame_len(), frame.len())?;
        self.written.push(frame.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_in_and_out() {
        let mut m = MemoryAudio::new(AudioConfig::default());
        m.push_input(&[7i16; 200]);
        let mut f = [0i16; 160];
        m.read_frame(&mut f).unwrap();
        assert_eq!(f, [7i16; 160]);
        m.read_frame(&mut f).unwrap();
        assert_eq!(&f[..40], &[7i16; 40]);
        assert!(f[40..].iter().all(|&s| s == 0));
        m.read_frame(&mut f).unwrap();
        assert_eq!(m.underruns(), 1);
        m.write_frame(&[3i16; 160]).unwrap();
        assert_eq!(m.take_output(), vec![vec![3i16; 160]]);
        assert!(matches!(
            m.write_frame(&[0i16; 80]),
            Err(AudioError::FrameLength {
                expected: 160,
                got: 80
            })
        ));
    }
}
