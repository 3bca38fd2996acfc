//! Receiving on the hot thread: spin briefly before parking, so an event that arrives within the
//! spin window is picked up without an OS wake-up (tens of microseconds on a VM).

use crossbeam_channel::{Receiver, TryRecvError};

/// Iterates a queue, spinning up to `spins` polls on an empty queue before blocking.
#[derive(Debug)]
pub struct SpinRecv<'a, T> {
    rx: &'a Receiver<T>,
    spins: u32,
}

impl<'a, T> SpinRecv<'a, T> {
    pub fn new(rx: &'a Receiver<T>, spins: u32) -> Self {
        Self { rx, spins }
    }
}

impl<T> Iterator for SpinRecv<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        for _ in 0..self.spins {
            match self.rx.try_recv() {
                Ok(v) => return Some(v),
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
        self.rx.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_everything_then_ends_when_senders_are_gone() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let producer = std::thread::spawn(move || {
            for i in 0..1000 {
                tx.send(i).unwrap();
            }
        });
        let got: Vec<i32> = SpinRecv::new(&rx, 100).collect();
        producer.join().unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }
}
