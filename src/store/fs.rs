//! The filesystem backend (the embedded default, `fs://./data`): the same layout as S3, under a
//! directory.
//!
//! Compare-and-swap holds across threads *and* processes: every conditional operation on a key
//! takes an exclusive lock on `<root>/.locks/<key>.lock` (std's `File::lock`, an `flock`), then
//! compares the stored content's hash with the caller's tag, then writes a temp file, fsyncs it,
//! renames it over the object and fsyncs the directory. Readers take no lock: a rename is atomic,
//! so they see the old or the new object, never a mix. Lock files are never deleted (deleting one
//! while another process waits on it would let two holders in); they are empty.
//!
//! All file work runs on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::StoreError;
use super::object_store::ObjectStore;
use super::objects::{ETag, LogRecord, Object, ObjectError, Objects, check_key};

/// Objects as files under one directory.
#[derive(Debug, Clone)]
pub struct FsObjects {
    root: Arc<PathBuf>,
}

/// The request store on a directory.
pub type FsStore = ObjectStore<FsObjects>;

impl FsStore {
    /// Opens (creating it if needed) a store in `dir`: requests, history, index, events and
    /// chat logs (`chat/`) all live under it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let objects = FsObjects::open(dir)?;
        Ok(ObjectStore::from_parts(objects.clone(), objects))
    }
}

impl FsObjects {
    /// Opens (creating it if needed) the directory `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ObjectError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io_error("create directory", &root, e))?;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, ObjectError>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T, ObjectError> + Send + 'static,
    {
        let root = Arc::clone(&self.root);
        tokio::task::spawn_blocking(move || f(&root))
            .await
            .map_err(|e| ObjectError::Backend {
                operation: "run file operation",
                object: root_location(&self.root),
                message: e.to_string(),
                source: Some(Box::new(e)),
            })?
    }
}

fn root_location(root: &Path) -> String {
    format!("fs://{}", root.display())
}

fn io_error(operation: &'static str, path: &Path, e: io::Error) -> ObjectError {
    ObjectError::Backend {
        operation,
        object: path.display().to_string(),
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}

fn etag_of(body: &[u8]) -> ETag {
    let digest = Sha256::digest(body);
    ETag::new(hex::encode(&digest[..16]))
}

/// Holds the exclusive lock of one key until dropped (closing the file releases the `flock`).
fn lock(root: &Path, key: &str) -> Result<File, ObjectError> {
    let path = root.join(".locks").join(format!("{key}.lock"));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_error("create lock directory", parent, e))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error("open lock file", &path, e))?;
    file.lock().map_err(|e| io_error("lock", &path, e))?;
    Ok(file)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, ObjectError> {
    match fs::read(path) {
        Ok(body) => Ok(Some(body)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), ObjectError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync directory", dir, e))
}

/// Temp file, fsync, rename over `path`, fsync the directory.
fn write_atomically(path: &Path, body: &[u8]) -> Result<(), ObjectError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let written = (|| {
        let mut f = File::create_new(&tmp)?;
        f.write_all(body)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("write", path, e));
    }
    sync_dir(dir)
}

fn conflict(path: &Path) -> ObjectError {
    ObjectError::Conflict {
        object: path.display().to_string(),
    }
}

fn log_path(root: &Path, log: &str) -> PathBuf {
    root.join(format!("{log}.jsonl"))
}

/// Keys of every file under `dir` (recursively), relative to `root`, skipping dot entries
/// (temp files, the lock directory).
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), ObjectError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| io_error("list", &path, e))?;
        if file_type.is_dir() {
            walk(root, &path, out)?;
        } else if file_type.is_file()
            && let Ok(rel) = path.strip_prefix(root)
        {
            let key: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
            out.push(key.join("/"));
        }
    }
    Ok(())
}

#[async_trait]
impl Objects for FsObjects {
    fn location(&self) -> String {
        root_location(&self.root)
    }

    fn describe(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        check_key(key)?;
        let key = key.to_owned();
        self.blocking(move |root| {
            Ok(read_optional(&root.join(&key))?.map(|body| Object {
                etag: etag_of(&body),
                body,
            }))
        })
        .await
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<ETag, ObjectError> {
        check_key(key)?;
        let key = key.to_owned();
        self.blocking(move |root| {
            let path = root.join(&key);
            let _lock = lock(root, &key)?;
            if path.try_exists().map_err(|e| io_error("stat", &path, e))? {
                return Err(conflict(&path));
            }
            write_atomically(&path, &body)?;
            Ok(etag_of(&body))
        })
        .await
    }

    async fn put_if_match(
        &self,
        key: &str,
        body: Vec<u8>,
        etag: &ETag,
    ) -> Result<ETag, ObjectError> {
        check_key(key)?;
        let (key, expected) = (key.to_owned(), etag.clone());
        self.blocking(move |root| {
            let path = root.join(&key);
            let _lock = lock(root, &key)?;
            match read_optional(&path)? {
                Some(current) if etag_of(&current) == expected => {
                    write_atomically(&path, &body)?;
                    Ok(etag_of(&body))
                }
                _ => Err(conflict(&path)),
            }
        })
        .await
    }

    async fn delete_if_match(&self, key: &str, etag: &ETag) -> Result<(), ObjectError> {
        check_key(key)?;
        let (key, expected) = (key.to_owned(), etag.clone());
        self.blocking(move |root| {
            let path = root.join(&key);
            let _lock = lock(root, &key)?;
            match read_optional(&path)? {
                Some(current) if etag_of(&current) == expected => {
                    fs::remove_file(&path).map_err(|e| io_error("delete", &path, e))?;
                    sync_dir(path.parent().unwrap_or(root))
                }
                _ => Err(conflict(&path)),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        // Walk the deepest folder the prefix names, then filter on the rest of it.
        let folder = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        if !folder.is_empty() {
            check_key(folder)?;
        }
        let (folder, prefix) = (folder.to_owned(), prefix.to_owned());
        self.blocking(move |root| {
            let mut keys = Vec::new();
            walk(root, &root.join(&folder), &mut keys)?;
            keys.retain(|k| k.starts_with(&prefix));
            keys.sort();
            Ok(keys)
        })
        .await
    }

    async fn append(&self, log: &str, mut record: Vec<u8>) -> Result<(), ObjectError> {
        check_key(log)?;
        if record.contains(&b'\n') {
            return Err(ObjectError::Backend {
                operation: "append",
                object: self.describe(log),
                message: "a log record must be one line".into(),
                source: None,
            });
        }
        record.push(b'\n');
        let log = log.to_owned();
        self.blocking(move |root| {
            let path = log_path(root, &log);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))?;
            }
            let _lock = lock(root, &format!("{log}.jsonl"))?;
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)
                .map_err(|e| io_error("open log", &path, e))?;
            // A crash in the middle of an earlier append can leave a line without its newline;
            // start on a fresh line so this record stays readable (the torn one is reported).
            let len = file
                .metadata()
                .map_err(|e| io_error("stat", &path, e))?
                .len();
            if len > 0 {
                let mut last = [0u8; 1];
                file.seek(SeekFrom::End(-1))
                    .and_then(|_| file.read_exact(&mut last))
                    .map_err(|e| io_error("read log", &path, e))?;
                if last[0] != b'\n' {
                    record.insert(0, b'\n');
                }
            }
            file.write_all(&record)
                .and_then(|()| file.sync_data())
                .map_err(|e| io_error("append", &path, e))
        })
        .await
    }

    async fn read_log(&self, log: &str) -> Result<Vec<LogRecord>, ObjectError> {
        check_key(log)?;
        let log = log.to_owned();
        self.blocking(move |root| {
            let path = log_path(root, &log);
            let Some(body) = read_optional(&path)? else {
                return Ok(Vec::new());
            };
            Ok(body
                .split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, line)| !line.is_empty())
                .map(|(i, line)| LogRecord {
                    origin: format!("{}:{}", path.display(), i + 1),
                    body: line.to_vec(),
                })
                .collect())
        })
        .await
    }
}
