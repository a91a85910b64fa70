//! Our own `terraform fmt` pass, so that Lambda (which has no `terraform` binary) writes the same
//! bytes `terraform fmt` would.
//!
//! hcl-rs emits correct HCL but does not align `=` signs the way `terraform fmt` (hclwrite)
//! does. This pass re-indents lines by bracket depth and aligns the `=` of runs of consecutive
//! single-line attributes, following hclwrite's rules:
//!
//! * a line takes part in alignment when it has an `=` after its first token and the expression
//!   after the `=` opens no bracket it does not close (`tags = {` does not, `tags = {}` does);
//! * any other line, a blank line or a comment line ends the run;
//! * within a run, every `=` is placed one column after the longest left-hand side, where a
//!   column is a Unicode grapheme cluster (so `"日本"` is four columns, `"é"` with a combining
//!   accent three), counted token by token as hclwrite does;
//! * indentation is two spaces per open bracket; trailing whitespace is removed.
//!
//! It handles the HCL subset our renderer emits (blocks, attributes, quoted strings, numbers,
//! bools, lists and objects, whole-line comments). Heredocs, multi-line comments and trailing
//! comments are refused rather than formatted differently from Terraform. Equality with the real
//! `terraform fmt` is tested over generated blocks (`tests/it/terraform_render.rs`).

use unicode_segmentation::UnicodeSegmentation;

/// Input outside the subset this pass formats exactly like `terraform fmt`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what} is not supported by the formatter")]
pub struct FmtError {
    pub line: usize,
    pub what: &'static str,
}

/// What one line holds, as far as indentation and alignment care.
struct Line<'a> {
    /// The line without its indentation and trailing whitespace.
    text: &'a str,
    /// Byte offset in `text` of the `=` that makes this an alignable attribute line.
    assign: Option<usize>,
    /// Open minus close brackets on the line.
    net_brackets: i32,
}

/// Formats `src` the way `terraform fmt` does (for the supported subset).
pub fn format(src: &str) -> Result<String, FmtError> {
    let mut lines = Vec::new();
    for (i, raw) in src.split('\n').enumerate() {
        lines.push(scan_line(raw.trim_end_matches('\r'), i + 1)?);
    }

    // Indentation: one level per line that opens more brackets than it closes.
    let mut indents: Vec<i32> = Vec::new();
    let mut levels = Vec::with_capacity(lines.len());
    for line in &lines {
        let net = line.net_brackets;
        if net < 0 {
            let mut closed = -net;
            while closed > 0 {
                match indents.last_mut() {
                    Some(top) if *top > closed => {
                        *top -= closed;
                        closed = 0;
                    }
                    Some(top) => {
                        closed -= *top;
                        indents.pop();
                    }
                    None => break,
                }
            }
        }
        levels.push(indents.len());
        if net > 0 {
            indents.push(net);
        }
    }

    // Alignment: runs of consecutive attribute lines share the column of their `=`.
    let mut out = String::with_capacity(src.len() + src.len() / 4);
    let mut i = 0;
    while i < lines.len() {
        if lines[i].assign.is_none() {
            push_line(&mut out, levels[i], lines[i].text, None);
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].assign.is_some() {
            i += 1;
        }
        let run = start..i;
        let width = run
            .clone()
            .map(|j| lead_columns(lines[j].text, lines[j].assign))
            .max()
            .unwrap_or(0);
        for j in run {
            push_line(
                &mut out,
                levels[j],
                lines[j].text,
                Some((lines[j].assign, width)),
            );
        }
    }
    // `split` yields one more piece than there are newlines; drop the final separator.
    out.pop();
    Ok(out)
}

fn push_line(out: &mut String, level: usize, text: &str, align: Option<(Option<usize>, usize)>) {
    if !text.is_empty() {
        for _ in 0..level {
            out.push_str("  ");
        }
    }
    match align {
        Some((Some(eq), width)) => {
            let lead = text[..eq].trim_end();
            let rest = text[eq + 1..].trim_start();
            out.push_str(lead);
            let pad = width - lead_columns(text, Some(eq)) + 1;
            out.extend(std::iter::repeat_n(' ', pad));
            out.push('=');
            if !rest.is_empty() {
                out.push(' ');
                out.push_str(rest);
            }
        }
        _ => out.push_str(text),
    }
    out.push('\n');
}

/// The width of the left-hand side in columns (grapheme clusters, token by token).
fn lead_columns(text: &str, assign: Option<usize>) -> usize {
    let Some(eq) = assign else { return 0 };
    let lead = text[..eq].trim_end();
    match lead.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        // A quoted key is three tokens: the quotes and the literal between them.
        Some(inner) => 2 + inner.graphemes(true).count(),
        None => lead.graphemes(true).count(),
    }
}

/// Finds the alignable `=` and the bracket balance of one line.
fn scan_line(raw: &str, number: usize) -> Result<Line<'_>, FmtError> {
    let text = raw.trim();
    let bytes = text.as_bytes();
    let mut net = 0;
    let mut first_eq: Option<(usize, i32)> = None;
    let mut i = 0;
    let mut tokens_before = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if i >= bytes.len() {
                    return Err(FmtError {
                        line: number,
                        what: "a string spanning lines",
                    });
                }
            }
            b'#' => {
                if tokens_before > 0 {
                    return Err(FmtError {
                        line: number,
                        what: "a trailing comment",
                    });
                }
                break;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') || bytes.get(i + 1) == Some(&b'*') => {
                return Err(FmtError {
                    line: number,
                    what: "a `//` or `/*` comment",
                });
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                return Err(FmtError {
                    line: number,
                    what: "a heredoc",
                });
            }
            b'{' | b'[' | b'(' => net += 1,
            b'}' | b']' | b')' => net -= 1,
            b'=' => {
                let prev = if i > 0 { bytes[i - 1] } else { b' ' };
                let next = bytes.get(i + 1).copied().unwrap_or(b' ');
                let compound =
                    matches!(prev, b'=' | b'!' | b'<' | b'>') || matches!(next, b'=' | b'>');
                if !compound && first_eq.is_none() && tokens_before > 0 {
                    first_eq = Some((i, net));
                }
            }
            _ => {}
        }
        tokens_before += 1;
        i += 1;
    }
    // Only an attribute whose value closes every bracket it opens is aligned.
    let assign = first_eq.and_then(|(pos, before)| (net - before == 0).then_some(pos));
    Ok(Line {
        text,
        assign,
        net_brackets: net,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_runs_and_breaks_them_at_multiline_values() {
        let src = "module \"m\" {\nsource = \"x\"\n  a_long_name = 1\n  tags = {\n    a = \"b\"\n    \"long key\" = \"c\"\n  }\n  e = {}\n  el = []\n}\n";
        insta::assert_snapshot!(format(src).unwrap(), @r#"
        module "m" {
          source      = "x"
          a_long_name = 1
          tags = {
            a          = "b"
            "long key" = "c"
          }
          e  = {}
          el = []
        }
        "#);
    }

    #[test]
    fn counts_grapheme_clusters_like_hclwrite() {
        let src =
            "x = {\n\"café\" = 1\nab = 2\n\"e\u{301}e\" = 3\n\"日本\" = 4\n\"a\\u00e9\" = 5\n}\n";
        let want = "x = {\n  \"café\"    = 1\n  ab        = 2\n  \"e\u{301}e\"      = 3\n  \"日本\"      = 4\n  \"a\\u00e9\" = 5\n}\n";
        assert_eq!(format(src).unwrap(), want);
    }

    #[test]
    fn equals_inside_strings_and_comparisons_are_not_assignments() {
        let src = "a = \"x = y\"\nbb = 1\n# c = 2\ndd = \"q\\\"=\"\n";
        assert_eq!(
            format(src).unwrap(),
            "a  = \"x = y\"\nbb = 1\n# c = 2\ndd = \"q\\\"=\"\n"
        );
    }

    #[test]
    fn keeps_blank_lines_and_missing_final_newline() {
        assert_eq!(format("a = 1\n\nbbb = 2").unwrap(), "a = 1\n\nbbb = 2");
        assert_eq!(format("").unwrap(), "");
    }

    #[test]
    fn refuses_what_it_cannot_format_exactly() {
        assert_eq!(
            format("a = 1 # note\n").unwrap_err().what,
            "a trailing comment"
        );
        assert_eq!(format("a = <<EOT\nx\nEOT\n").unwrap_err().line, 1);
        assert!(format("a = \"open\n\"").is_err());
    }
}
