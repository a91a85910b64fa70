//! Where [`FsInbox`](super::FsInbox)'s files live (the layout `inbox::fs` describes) and the
//! file operations its inbox and its journal (`inbox::journal`) share: an item moved into place
//! create-only, temporary files, directory syncs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{InboxError, PutOutcome};
use crate::ids::DeliveryId;

/// Pending deliveries.
pub(super) const INBOX: &str = "inbox";
/// Finished deliveries, kept for `get` until pruned.
pub(super) const FINISHED: &str = "inbox-finished";
/// Attempts, last error and lease of pending items.
pub(super) const STATE: &str = "inbox-state";
/// Done markers: the final state of finished items.
pub(super) const DONE: &str = "inbox-done";
/// The group commit's journal segments.
pub(super) const JOURNAL: &str = "inbox-journal";
/// Temporary files.
pub(super) const TMP: &str = "tmp";
/// The file lock held for every state change.
pub(super) const LOCK: &str = "inbox.lock";

/// Where an inbox's files live: the names [`FsInbox`](super::FsInbox) uses.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn item(&self, dir: &str, id: &DeliveryId) -> PathBuf {
        self.root.join(dir).join(format!("{id}.json"))
    }

    pub fn temp(&self, name: &str) -> PathBuf {
        self.root
            .join(TMP)
            .join(format!("{name}.{}.tmp", uuid::Uuid::new_v4().simple()))
    }

    /// Writes `bytes` to a new temporary file, flushed to disk if `sync`.
    pub fn write_temp(&self, name: &str, bytes: &[u8], sync: bool) -> Result<PathBuf, InboxError> {
        let tmp = self.temp(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        file.write_all(bytes).map_err(io_err("write", &tmp))?;
        if sync {
            file.sync_all().map_err(io_err("sync", &tmp))?;
        }
        Ok(tmp)
    }

    /// Whether a delivery with this id was stored (pending or finished).
    pub fn known(&self, id: &DeliveryId) -> bool {
        self.item(INBOX, id).exists() || self.item(DONE, id).exists()
    }

    /// Moves a finished item's delivery from `inbox/` to `inbox-finished/` (done when its done
    /// marker is durable; one already moved, by another process too, is fine).
    pub fn move_to_finished(&self, id: &DeliveryId) -> io::Result<()> {
        match fs::rename(self.item(INBOX, id), self.item(FINISHED, id)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            moved => moved,
        }
    }

    /// Creates `inbox/<id>.json` holding `json` unless it exists (create-only across processes:
    /// the move fails if the name exists). With `sync`, the file and the directory entry are
    /// flushed; without, the journal made it durable. An item finished meanwhile (its file moved
    /// on after [`Self::known`] said no: another process, or a large put beside the committer,
    /// stored and finished the same id) is a duplicate: the copy just created is moved on too.
    pub fn create_item(
        &self,
        id: &DeliveryId,
        json: &[u8],
        sync: bool,
    ) -> Result<PutOutcome, InboxError> {
        let dest = self.item(INBOX, id);
        let tmp = self.write_temp(id.as_str(), json, sync)?;
        let linked = move_new(&tmp, &dest);
        match linked {
            // The done marker is written before the file moves, so it is seen here if the move
            // made room for this copy.
            Ok(()) if self.item(DONE, id).exists() => {
                self.move_to_finished(id).map_err(io_err("move", &dest))?;
                Ok(PutOutcome::Duplicate)
            }
            Ok(()) if sync => {
                let dir = self.root.join(INBOX);
                sync_dir(&dir).map_err(io_err("sync", &dir))?;
                Ok(PutOutcome::Created)
            }
            Ok(()) => Ok(PutOutcome::Created),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(PutOutcome::Duplicate),
            Err(e) => Err(io_err("move into place", &dest)(e)),
        }
    }
}

/// Moves the complete file `tmp` to the new name `dest`, failing with `AlreadyExists` if `dest`
/// exists: atomic and create-only across processes, and readers never see half a file. One
/// `rename` with `RENAME_NOREPLACE` where the system has it; elsewhere (or on a file system that
/// refuses the flag) a hard link and an unlink, which also allocate and free a second directory
/// entry (ext4 then spends its time looking past recently freed inodes).
fn move_new(tmp: &Path, dest: &Path) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_vendor = "apple"))]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, tmp, CWD, dest, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::EXIST => {
                let _ = fs::remove_file(tmp);
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            // Not supported here (old kernel, a file system without it): link and unlink.
            // (or refused by a sandbox's system-call filter, which answers EPERM)
            Err(e)
                if e == rustix::io::Errno::INVAL
                    || e == rustix::io::Errno::NOSYS
                    || e == rustix::io::Errno::NOTSUP
                    || e == rustix::io::Errno::PERM => {}
            Err(e) => {
                let _ = fs::remove_file(tmp);
                return Err(e.into());
            }
        }
    }
    let linked = fs::hard_link(tmp, dest);
    let _ = fs::remove_file(tmp);
    linked
}

impl Layout {
    /// Replaces `inbox/<id>.json` with `json` (temp + rename; not synced: the journal segment
    /// that holds `json` stays until the item is finished).
    pub fn replace_item(&self, id: &DeliveryId, json: &[u8]) -> Result<(), InboxError> {
        let dest = self.item(INBOX, id);
        let tmp = self.write_temp(id.as_str(), json, false)?;
        fs::rename(&tmp, &dest).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err("rename into", &dest)(e)
        })
    }
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(super) fn io_err(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> InboxError {
    let path = path.to_path_buf();
    move |source| InboxError::Io {
        operation,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check for a known id and the create-only move are two steps: an id stored and
    /// finished between them (by another process sharing the directory, or a large put beside
    /// the committer) left room for a second copy in `inbox/`, answered as new and queued again.
    #[test]
    fn an_id_finished_meanwhile_is_a_duplicate_not_a_new_item() {
        let dir = tempfile::tempdir().unwrap();
        for sub in [INBOX, FINISHED, DONE, TMP] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let layout = Layout {
            root: dir.path().to_path_buf(),
        };
        // The first copy was stored, finished and moved on: its marker and its file remain.
        let id: DeliveryId = "race-1".parse().unwrap();
        fs::write(layout.item(DONE, &id), b"{}").unwrap();
        fs::write(layout.item(FINISHED, &id), b"first").unwrap();
        assert_eq!(
            layout.create_item(&id, b"second", false).unwrap(),
            PutOutcome::Duplicate
        );
        assert!(!layout.item(INBOX, &id).exists(), "not pending again");
        let new: DeliveryId = "race-2".parse().unwrap();
        assert_eq!(
            layout.create_item(&new, b"x", false).unwrap(),
            PutOutcome::Created
        );
        assert_eq!(fs::read(layout.item(INBOX, &new)).unwrap(), b"x");
        assert_eq!(
            layout.create_item(&new, b"y", true).unwrap(),
            PutOutcome::Duplicate
        );
    }
}
