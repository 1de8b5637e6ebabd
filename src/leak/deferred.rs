//! Probes kept until the filter is complete: in memory within a budget
//! shared by the run, then in an unnamed temporary file, then given up (the
//! file is read back instead).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A queued probe: the field's column (COPY position) and row (telling the
/// fields of a column apart), the key's hash, and whether the key is the
/// whole field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub column: u32,
    pub whole: bool,
    pub field: u64,
    pub hash: u64,
}

/// The memory and disk a run's deferred probes may use, shared by all.
#[derive(Clone)]
pub struct Budgets {
    /// Slots that may still be kept in memory.
    slots: Arc<AtomicUsize>,
    /// Bytes that may still be written to temporary files.
    disk: Arc<AtomicU64>,
}

impl Budgets {
    /// `memory` bytes of kept slots and `disk` bytes of spilled ones.
    pub fn new(memory: usize, disk: u64) -> Self {
        Budgets { slots: Arc::new(AtomicUsize::new(memory / SLOT_BYTES)), disk: Arc::new(AtomicU64::new(disk)) }
    }
}

/// Slots kept until the filter is complete.
pub(super) struct Deferred {
    slots: Mutex<Vec<Queued>>,
    budgets: Budgets,
    /// Batches past the memory budget, written to an unnamed temporary file
    /// (gone when closed), within the run's disk budget for them.
    spill: Mutex<Option<std::fs::File>>,
    /// Bytes of the disk budget this probe holds, given back with the file.
    spilled_bytes: AtomicU64,
    /// Set when both budgets ran out (or the temporary file failed): the
    /// file must be read back instead.
    overflowed: AtomicBool,
}

/// Bytes of one kept slot.
pub const SLOT_BYTES: usize = std::mem::size_of::<Queued>();

/// Bytes of one probe written to the temporary file: column, whole, field, hash.
pub const SPILLED_SLOT_BYTES: u64 = 4 + 1 + 8 + 8;

impl Deferred {
    pub(super) fn new(budgets: Budgets) -> Self {
        Deferred {
            slots: Mutex::new(Vec::new()),
            budgets,
            spill: Mutex::new(None),
            spilled_bytes: AtomicU64::new(0),
            overflowed: AtomicBool::new(false),
        }
    }

    /// Keeps a batch (emptying it): in memory while the budget lasts, then
    /// in the temporary file. Past both, the probe overflows: what it kept
    /// is freed for the probes of other tables, and its file must be read
    /// back.
    pub(super) fn keep(&self, batch: &mut Vec<Queued>) {
        if batch.is_empty() || self.overflowed.load(Ordering::Relaxed) {
            batch.clear();
            return;
        }
        let n = batch.len();
        let granted =
            self.budgets.slots.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(n)).is_ok();
        if let (true, Ok(mut kept)) = (granted, self.slots.lock()) {
            kept.append(batch);
            return;
        }
        if !granted && self.spill(batch) {
            batch.clear();
            return;
        }
        self.overflowed.store(true, Ordering::Relaxed);
        let freed = self.slots.lock().map(|mut kept| std::mem::take(&mut *kept).len()).unwrap_or(0);
        self.budgets.slots.fetch_add(freed + if granted { n } else { 0 }, Ordering::Relaxed);
        self.drop_spill();
        batch.clear();
    }

    /// Hands every kept slot, in memory and spilled, to `lookup`, once the
    /// filter is complete. False when both budgets ran out or the temporary
    /// file failed (the file must then be read back); the memory budget is
    /// given back either way.
    pub(super) fn finish(&self, mut lookup: impl FnMut(&mut Vec<Queued>)) -> bool {
        let mut kept = match self.slots.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => return false,
        };
        self.budgets.slots.fetch_add(kept.len(), Ordering::Relaxed);
        if self.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        lookup(&mut kept);
        self.unspill(lookup).is_ok()
    }

    /// Whether some of the kept slots went to the temporary file.
    pub(super) fn spilled(&self) -> bool {
        self.spill.lock().is_ok_and(|f| f.is_some())
    }

    /// Writes a batch to the temporary file, if the disk budget allows.
    fn spill(&self, batch: &[Queued]) -> bool {
        use std::io::Write;
        let bytes = batch.len() as u64 * SPILLED_SLOT_BYTES;
        if self.budgets.disk.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(bytes)).is_err()
        {
            return false;
        }
        self.spilled_bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut record = Vec::with_capacity(bytes as usize);
        for q in batch {
            record.extend_from_slice(&q.column.to_le_bytes());
            record.push(u8::from(q.whole));
            record.extend_from_slice(&q.field.to_le_bytes());
            record.extend_from_slice(&q.hash.to_le_bytes());
        }
        let Ok(mut file) = self.spill.lock() else { return false };
        if file.is_none() {
            *file = tempfile::tempfile().ok();
        }
        file.as_mut().is_some_and(|f| f.write_all(&record).is_ok())
    }

    /// Closes (and so deletes) the temporary file, giving its disk budget back.
    fn drop_spill(&self) -> Option<std::fs::File> {
        self.budgets.disk.fetch_add(self.spilled_bytes.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        self.spill.lock().ok().and_then(|mut f| f.take())
    }

    /// Reads the spilled slots back, a block at a time, for `lookup`.
    fn unspill(&self, mut lookup: impl FnMut(&mut Vec<Queued>)) -> std::io::Result<()> {
        use std::io::{Read, Seek};
        let Some(mut file) = self.drop_spill() else { return Ok(()) };
        file.seek(std::io::SeekFrom::Start(0))?;
        let mut reader = std::io::BufReader::new(file);
        let mut record = [0u8; SPILLED_SLOT_BYTES as usize];
        let mut batch = Vec::with_capacity(4096);
        loop {
            match reader.read_exact(&mut record) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let word = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().unwrap_or_default());
            let column = u32::from_le_bytes(record[..4].try_into().unwrap_or_default());
            batch.push(Queued { column, whole: record[4] != 0, field: word(5), hash: word(13) });
            if batch.len() == 4096 {
                lookup(&mut batch);
            }
        }
        lookup(&mut batch);
        Ok(())
    }
}
