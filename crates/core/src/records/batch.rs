//! Importing many photos in one command (a camera card, a move from another system): each
//! file checked and reported on its own, one failing file never blocking the others, the
//! store's key unlocked once, the decoding spread over the machine's cores.
//!
//! Workers (each with its own [`Store::reader`]) read, check, seal and derive files ahead of
//! the recording, at most [`AHEAD`] files in hand; the calling thread records them in the
//! order given, so the first file of a new series becomes its baseline as it would one file
//! at a time, and memory stays bounded whatever the number of files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::RecordError;
use super::capture::{ImportOutcome, ImportRequest, Prepared};
use crate::store::Store;

/// Files prepared ahead of the one being recorded, per worker.
pub const AHEAD: usize = 2;

/// One file of a batch and what became of it.
#[derive(Debug)]
pub struct FileResult {
    pub file: PathBuf,
    pub outcome: Result<ImportOutcome, RecordError>,
}

/// What a worker hands back: the file's place, its bytes and its prepared import.
type Worked = (usize, Vec<u8>, Result<Prepared, RecordError>);

impl Store {
    /// Import `files` with the fields of `template` (its bytes, subject, capture time and
    /// file time are each file's own). `progress(done, failed)` is called after each file.
    /// Results are in the order of `files`.
    pub fn import_files(
        &self,
        files: &[PathBuf],
        template: &ImportRequest<'_>,
        workers: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Vec<FileResult> {
        let workers = workers.clamp(1, files.len().max(1));
        // Workers hold read-only handles: the consent's data key is made here first, if the
        // consent has none yet (an import's only write before its unit of work).
        let readers: Vec<Store> = match self.consent_key(template.consent_id.trim()) {
            Ok(_) => (0..workers).filter_map(|_| self.reader().ok()).collect(),
            Err(_) => Vec::new(),
        };
        let next = AtomicUsize::new(0);
        let recorded = AtomicUsize::new(0);
        let limit = AHEAD * readers.len().max(1);
        // Without a worker (no second connection), the files are prepared here.
        let inline = readers.is_empty();
        let (tx, rx) = mpsc::channel::<Worked>();
        let mut out: Vec<FileResult> = Vec::with_capacity(files.len());
        std::thread::scope(|scope| {
            for store in readers {
                let tx = tx.clone();
                let (next, recorded) = (&next, &recorded);
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= files.len() {
                            return;
                        }
                        while i >= recorded.load(Ordering::SeqCst) + limit {
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                        let (bytes, prepared) = store.prepare_file(&files[i], template);
                        if tx.send((i, bytes, prepared)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            let mut waiting: BTreeMap<usize, (Vec<u8>, Result<Prepared, RecordError>)> =
                BTreeMap::new();
            let mut failed = 0;
            for (i, file) in files.iter().enumerate() {
                let (bytes, prepared) = if inline {
                    self.prepare_file(file, template)
                } else {
                    loop {
                        if let Some(w) = waiting.remove(&i) {
                            break w;
                        }
                        match rx.recv() {
                            Ok((j, b, p)) => {
                                waiting.insert(j, (b, p));
                            }
                            Err(_) => break (Vec::new(), Err(worker_lost(file))),
                        }
                    }
                };
                let outcome = prepared.and_then(|p| match p {
                    Prepared::Done(o) => Ok(*o),
                    Prepared::Ready(p) => {
                        let subject = file.display().to_string();
                        let req = file_request(template, &bytes, &subject, file);
                        self.finish_import(&req, *p)
                    }
                });
                failed += usize::from(outcome.is_err());
                out.push(FileResult {
                    file: file.clone(),
                    outcome,
                });
                recorded.store(i + 1, Ordering::SeqCst);
                progress(i + 1, failed);
            }
        });
        out
    }

    /// Read, check, seal and derive one file of a batch.
    fn prepare_file(
        &self,
        file: &Path,
        template: &ImportRequest<'_>,
    ) -> (Vec<u8>, Result<Prepared, RecordError>) {
        let bytes = match self
            .calibration()
            .limits()
            .map_err(RecordError::from)
            .and_then(|l| Ok(crate::ingest::read_file(file, &l)?))
        {
            Ok(b) => b,
            Err(e) => return (Vec::new(), Err(e)),
        };
        let subject = file.display().to_string();
        let req = file_request(template, &bytes, &subject, file);
        let prepared = self.prepare_import(&req);
        (bytes, prepared)
    }
}

/// `template` for one file: its bytes, its name in messages, its modification time.
fn file_request<'a>(
    template: &ImportRequest<'a>,
    bytes: &'a [u8],
    subject: &'a str,
    file: &Path,
) -> ImportRequest<'a> {
    ImportRequest {
        bytes,
        subject,
        captured_at: None,
        file_modified: std::fs::metadata(file).and_then(|m| m.modified()).ok(),
        ..template.clone()
    }
}

fn worker_lost(file: &Path) -> RecordError {
    RecordError::Invalid {
        what: file.display().to_string(),
        why: "the import worker stopped before this file".into(),
    }
}
