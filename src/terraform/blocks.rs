//! The bounded-block editor: each request owns exactly the lines between
//! `# --- tfpilot:begin:<id> ---` and `# --- tfpilot:end:<id> ---`.
//!
//! Pure functions on file text. Every byte outside the request's markers is kept (CRLF files,
//! a missing final newline, other requests' blocks, hand-written code). Before any edit the
//! whole file is checked: unbalanced, duplicated, nested or mismatched markers, or a marker
//! whose id is not a request id, are an error naming the line — never a guess, never a partial
//! write. One pass over the text, so an edit is linear in the file size.
//!
//! Layout: a block appended to a non-empty file is preceded by one blank line; removing a block
//! also removes that blank line when doing so cannot join two non-blank lines, so insert then
//! remove gives back the original file (when it ended in a newline).

use std::collections::HashMap;
use std::ops::Range;

use crate::ids::RequestId;

const BEGIN: &str = "tfpilot:begin:";
const END: &str = "tfpilot:end:";

/// The line that opens a request's block.
pub fn begin_marker(id: &RequestId) -> String {
    format!("# --- {BEGIN}{id} ---")
}

/// The line that closes a request's block.
pub fn end_marker(id: &RequestId) -> String {
    format!("# --- {END}{id} ---")
}

/// One request's block in a file. Lines are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundedBlock {
    pub id: RequestId,
    pub begin_line: usize,
    pub end_line: usize,
    /// Bytes from the start of the begin line to just after the end line's line break (or
    /// the end of the file).
    pub range: Range<usize>,
}

/// Why a file (or a block) cannot be edited. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error(
        "line {line}: `{text}` looks like a TfPilot marker but is not one (expected `# --- tfpilot:begin:<request id> ---` or `# --- tfpilot:end:<request id> ---`)"
    )]
    MalformedMarker { line: usize, text: String },
    #[error("line {line}: the marker's id `{id}` is not a request id (a lowercase UUID)")]
    InvalidMarkerId { line: usize, id: String },
    #[error(
        "line {line}: a block for request {id} begins inside the block of request {outer_id}, which begins on line {outer_line}; blocks cannot be nested"
    )]
    Nested {
        line: usize,
        id: String,
        outer_id: String,
        outer_line: usize,
    },
    #[error("line {line}: the end marker of request {id} has no begin marker before it")]
    UnmatchedEnd { line: usize, id: String },
    #[error("line {begin_line}: the block of request {id} is never closed (no end marker)")]
    Unclosed { begin_line: usize, id: String },
    #[error(
        "line {line}: the end marker is for request {end_id}, but the open block (line {begin_line}) is request {begin_id}"
    )]
    Mismatched {
        line: usize,
        begin_line: usize,
        begin_id: String,
        end_id: String,
    },
    #[error("line {line}: request {id} has a second block (the first begins on line {first_line})")]
    Duplicate {
        line: usize,
        first_line: usize,
        id: String,
    },
    #[error("line {line}: request {id} already has a different block here; replace it instead")]
    AlreadyPresent { line: usize, id: RequestId },
    #[error("request {id} has no block in this file")]
    NotFound { id: RequestId },
    #[error("the new block for request {id} is not a single bounded block: {reason}")]
    InvalidBlock { id: RequestId, reason: String },
}

/// Every block in `text`, in file order, after checking all markers.
pub fn parse_blocks(text: &str) -> Result<Vec<BoundedBlock>, BlockError> {
    let mut blocks = Vec::new();
    let mut first_seen: HashMap<RequestId, usize> = HashMap::new();
    let mut open: Option<(RequestId, usize, usize)> = None; // id, line, byte start
    let mut offset = 0;
    for (index, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let start = offset;
        offset += raw_line.len();
        let Some(marker) = classify(raw_line, line_no)? else {
            continue;
        };
        match (marker, open) {
            (Marker::Begin(id), None) => {
                if let Some(&first_line) = first_seen.get(&id) {
                    return Err(BlockError::Duplicate {
                        line: line_no,
                        first_line,
                        id: id.to_string(),
                    });
                }
                first_seen.insert(id, line_no);
                open = Some((id, line_no, start));
            }
            (Marker::Begin(id), Some((outer, outer_line, _))) => {
                return Err(BlockError::Nested {
                    line: line_no,
                    id: id.to_string(),
                    outer_id: outer.to_string(),
                    outer_line,
                });
            }
            (Marker::End(id), None) => {
                return Err(BlockError::UnmatchedEnd {
                    line: line_no,
                    id: id.to_string(),
                });
            }
            (Marker::End(id), Some((open_id, begin_line, begin_start))) => {
                if id != open_id {
                    return Err(BlockError::Mismatched {
                        line: line_no,
                        begin_line,
                        begin_id: open_id.to_string(),
                        end_id: id.to_string(),
                    });
                }
                blocks.push(BoundedBlock {
                    id,
                    begin_line,
                    end_line: line_no,
                    range: begin_start..offset,
                });
                open = None;
            }
        }
    }
    if let Some((id, begin_line, _)) = open {
        return Err(BlockError::Unclosed {
            begin_line,
            id: id.to_string(),
        });
    }
    Ok(blocks)
}

/// The block of request `id`, if the file has one.
pub fn find_block(text: &str, id: &RequestId) -> Result<Option<BoundedBlock>, BlockError> {
    Ok(parse_blocks(text)?.into_iter().find(|b| b.id == *id))
}

/// Appends the block of request `id` (the file may be empty: a new file). Inserting the same
/// block again changes nothing; a different block for the same request is an error.
pub fn insert_block(text: &str, id: &RequestId, block: &str) -> Result<String, BlockError> {
    let block = check_block(id, block)?;
    let eol = line_ending(text);
    let block = with_line_ending(&block, eol);
    if let Some(existing) = find_block(text, id)? {
        return if same_block(&text[existing.range.clone()], &block) {
            Ok(text.to_owned())
        } else {
            Err(BlockError::AlreadyPresent {
                line: existing.begin_line,
                id: *id,
            })
        };
    }
    let mut out = String::with_capacity(text.len() + block.len() + 4);
    out.push_str(text);
    if !text.is_empty() {
        if !text.ends_with('\n') {
            out.push_str(eol);
        }
        out.push_str(eol);
    }
    out.push_str(&block);
    Ok(out)
}

/// Replaces the block of request `id`; it must exist.
pub fn replace_block(text: &str, id: &RequestId, block: &str) -> Result<String, BlockError> {
    let block = check_block(id, block)?;
    let existing = find_block(text, id)?.ok_or(BlockError::NotFound { id: *id })?;
    Ok(splice(
        text,
        &existing,
        &with_line_ending(&block, line_ending(text)),
    ))
}

/// Replaces the block of request `id`, or appends it if the file has none.
pub fn upsert_block(text: &str, id: &RequestId, block: &str) -> Result<String, BlockError> {
    let checked = check_block(id, block)?;
    match find_block(text, id)? {
        Some(existing) => Ok(splice(
            text,
            &existing,
            &with_line_ending(&checked, line_ending(text)),
        )),
        None => insert_block(text, id, block),
    }
}

/// Removes the block of request `id` (and the blank line insert put before it). Removing a
/// block that is not there changes nothing.
pub fn remove_block(text: &str, id: &RequestId) -> Result<String, BlockError> {
    let Some(existing) = find_block(text, id)? else {
        return Ok(text.to_owned());
    };
    let mut start = existing.range.start;
    let end = existing.range.end;
    let after = &text[end..];
    let next_line_blank = after.is_empty() || is_blank(after.split('\n').next().unwrap_or(""));
    if start > 0 && next_line_blank {
        // `text[..start]` ends with the line break of the line before the block.
        let before = &text[..start - 1];
        let prev_start = before.rfind('\n').map_or(0, |i| i + 1);
        if is_blank(&text[prev_start..start - 1]) {
            start = prev_start;
        }
    }
    let mut out = String::with_capacity(text.len() - (end - start));
    out.push_str(&text[..start]);
    out.push_str(after);
    Ok(out)
}

enum Marker {
    Begin(RequestId),
    End(RequestId),
}

/// Whether a line is a marker. A comment line that mentions a marker but is not exactly one is
/// an error: it is either damage or an attempt to confuse the editor.
fn classify(raw_line: &str, line_no: usize) -> Result<Option<Marker>, BlockError> {
    let line = raw_line.trim();
    let is_comment = line.starts_with('#') || line.starts_with("//") || line.starts_with("/*");
    if !is_comment {
        return Ok(None);
    }
    let lower = line.to_ascii_lowercase();
    if !lower.contains(BEGIN) && !lower.contains(END) {
        return Ok(None);
    }
    let malformed = || BlockError::MalformedMarker {
        line: line_no,
        text: line.chars().take(120).collect(),
    };
    let inner = line
        .strip_prefix("# --- ")
        .and_then(|l| l.strip_suffix(" ---"))
        .ok_or_else(malformed)?;
    let (kind, id) = if let Some(id) = inner.strip_prefix(BEGIN) {
        (true, id)
    } else if let Some(id) = inner.strip_prefix(END) {
        (false, id)
    } else {
        return Err(malformed());
    };
    let id: RequestId = id.parse().map_err(|_| BlockError::InvalidMarkerId {
        line: line_no,
        id: id.chars().take(80).collect(),
    })?;
    Ok(Some(if kind {
        Marker::Begin(id)
    } else {
        Marker::End(id)
    }))
}

/// Checks that `block` is exactly one bounded block for `id`; returns it with `\n` line breaks
/// and a final newline.
fn check_block(id: &RequestId, block: &str) -> Result<String, BlockError> {
    let invalid = |reason: String| BlockError::InvalidBlock { id: *id, reason };
    let mut normalized = block.replace("\r\n", "\n");
    if normalized.contains('\r') {
        return Err(invalid(
            "it contains a carriage return outside a line break".into(),
        ));
    }
    if !normalized.ends_with('\n') {
        normalized.push('\n');
    }
    let blocks = parse_blocks(&normalized).map_err(|e| invalid(e.to_string()))?;
    match blocks.as_slice() {
        [only] if only.id == *id && only.range == (0..normalized.len()) => Ok(normalized),
        [only] if only.id != *id => {
            Err(invalid(format!("its markers are for request {}", only.id)))
        }
        [] => Err(invalid("it has no markers".into())),
        [_] => Err(invalid("it has text outside its markers".into())),
        _ => Err(invalid("it holds more than one block".into())),
    }
}

/// `\r\n` if the file's first line break is one, `\n` otherwise.
fn line_ending(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

fn with_line_ending(block: &str, eol: &str) -> String {
    if eol == "\n" {
        block.to_owned()
    } else {
        block.replace('\n', eol)
    }
}

/// Compares an existing block with a new one, ignoring only a final line break the file lacks.
fn same_block(existing: &str, new: &str) -> bool {
    existing == new
        || (!existing.ends_with('\n')
            && new
                .strip_suffix('\n')
                .map(|n| n.strip_suffix('\r').unwrap_or(n))
                == Some(existing))
}

fn splice(text: &str, existing: &BoundedBlock, block: &str) -> String {
    let range = existing.range.clone();
    // A block that ended the file without a final newline keeps ending it that way.
    let block = if range.end == text.len() && !text.ends_with('\n') {
        block.trim_end_matches(['\n', '\r'])
    } else {
        block
    };
    let mut out = String::with_capacity(text.len() - range.len() + block.len());
    out.push_str(&text[..range.start]);
    out.push_str(block);
    out.push_str(&text[range.end..]);
    out
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

#[cfg(test)]
mod tests;
