//! Reading files out of a workflow artifact (a zip), with size caps on what is extracted so a
//! hostile or runaway artifact cannot exhaust memory. Pure: no I/O beyond the bytes given.

use std::io::{Cursor, Read};

/// A downloaded artifact zip.
#[derive(Clone, PartialEq, Eq)]
pub struct ArtifactArchive {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for ArtifactArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArtifactArchive({} bytes)", self.bytes.len())
    }
}

/// Why a file could not be read from an artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    #[error("the artifact is not a readable zip archive ({0})")]
    NotAZip(String),
    #[error("the artifact has no file named {0}")]
    Missing(String),
    #[error("{name} in the artifact is larger than the {limit}-byte limit")]
    TooLarge { name: String, limit: u64 },
}

impl ArtifactArchive {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The names of the files in the archive.
    pub fn file_names(&self) -> Result<Vec<String>, ArtifactError> {
        let archive = zip::ZipArchive::new(Cursor::new(&self.bytes))
            .map_err(|e| ArtifactError::NotAZip(e.to_string()))?;
        archive
            .file_names()
            .map(|n| {
                n.map(|n| n.into_owned())
                    .map_err(|e| ArtifactError::NotAZip(e.to_string()))
            })
            .collect()
    }

    /// The bytes of `name`, refusing anything over `max_bytes` (checked against the header and
    /// again while inflating, since a header can lie).
    pub fn file(&self, name: &str, max_bytes: u64) -> Result<Vec<u8>, ArtifactError> {
        let mut archive = zip::ZipArchive::new(Cursor::new(&self.bytes))
            .map_err(|e| ArtifactError::NotAZip(e.to_string()))?;
        let entry = archive
            .by_name(name)
            .map_err(|_| ArtifactError::Missing(name.to_owned()))?;
        let too_large = || ArtifactError::TooLarge {
            name: name.to_owned(),
            limit: max_bytes,
        };
        if entry.size() > max_bytes {
            return Err(too_large());
        }
        let mut out = Vec::new();
        entry
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| ArtifactError::NotAZip(e.to_string()))?;
        if out.len() as u64 > max_bytes {
            return Err(too_large());
        }
        Ok(out)
    }

    /// `name` as UTF-8 text.
    pub fn text(&self, name: &str, max_bytes: u64) -> Result<String, ArtifactError> {
        String::from_utf8(self.file(name, max_bytes)?)
            .map_err(|_| ArtifactError::NotAZip(format!("{name} is not UTF-8 text")))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn extracts_named_files_within_the_cap() {
        let archive = ArtifactArchive::new(zip_of(&[
            ("plan.txt", b"No changes."),
            ("plan.json", b"{}"),
        ]));
        assert_eq!(archive.file_names().unwrap().len(), 2);
        assert_eq!(archive.text("plan.txt", 100).unwrap(), "No changes.");
        assert_eq!(archive.file("plan.json", 2).unwrap(), b"{}");
        assert_eq!(
            archive.file("plan.txt", 5),
            Err(ArtifactError::TooLarge {
                name: "plan.txt".into(),
                limit: 5
            })
        );
        assert_eq!(
            archive.file("nope.txt", 5),
            Err(ArtifactError::Missing("nope.txt".into()))
        );
    }

    #[test]
    fn a_highly_compressible_file_is_capped_while_inflating() {
        let big = vec![b'a'; 1_000_000];
        let bytes = zip_of(&[("plan.txt", &big)]);
        assert!(
            bytes.len() < 10_000,
            "the zip is small; only the inflated size is big"
        );
        let archive = ArtifactArchive::new(bytes);
        assert!(matches!(
            archive.file("plan.txt", 64 * 1024),
            Err(ArtifactError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_not_a_zip() {
        let archive = ArtifactArchive::new(b"<html>".to_vec());
        assert!(matches!(
            archive.file("plan.txt", 10),
            Err(ArtifactError::NotAZip(_))
        ));
    }
}
