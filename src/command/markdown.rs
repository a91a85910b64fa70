//! Reading a comment as GitHub shows it: markdown parsed first, only plain text counts.

use pulldown_cmark::{Event, Parser, Tag, TagEnd, TextMergeStream};

use super::MAX_COMMENT_BYTES;

/// The plain text of a comment as a reader sees it, without code (blocks and inline), block
/// quotes, HTML (comments included), link and image text or headings. Paragraphs and line
/// breaks become newlines. Use it before handing a conversation turn to the assistant, so text
/// quoted from an earlier comment is not read again.
pub fn strip_markdown(body: &str) -> String {
    plain_text(body, None)
}

/// Stands for inline text that is shown but not read (inline code, a link's or an image's text)
/// while a comment is split into lines; removed before anything else reads the line.
pub(super) const UNREAD_INLINE: char = '\u{FFFC}';

/// [`strip_markdown`], with `unread_inline` (if any) written where inline code, a link or an
/// image was left out.
pub(super) fn plain_text(body: &str, unread_inline: Option<char>) -> String {
    let mut out = String::with_capacity(body.len().min(MAX_COMMENT_BYTES));
    // Depth inside elements whose text does not count.
    let mut skipped = 0usize;
    for event in TextMergeStream::new(Parser::new(body)) {
        match event {
            Event::Start(tag) if is_skipped(&tag) => {
                if skipped == 0
                    && matches!(tag, Tag::Link { .. } | Tag::Image { .. })
                    && let Some(c) = unread_inline
                {
                    out.push(c);
                }
                skipped += 1;
            }
            Event::Code(_) if skipped == 0 => out.extend(unread_inline),
            Event::End(tag) => {
                if is_skipped_end(tag) {
                    skipped = skipped.saturating_sub(1);
                }
                if matches!(
                    tag,
                    TagEnd::Paragraph | TagEnd::Item | TagEnd::Heading(_) | TagEnd::CodeBlock
                ) && !out.ends_with('\n')
                {
                    out.push('\n');
                }
            }
            Event::Text(text) if skipped == 0 => out.push_str(&text),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            // Inline code, HTML (comments too), math and footnotes never hold commands.
            _ => {}
        }
    }
    out
}

fn is_skipped(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::BlockQuote(_)
            | Tag::CodeBlock(_)
            | Tag::HtmlBlock
            | Tag::Link { .. }
            | Tag::Image { .. }
            | Tag::Heading { .. }
            | Tag::MetadataBlock(_)
    )
}

fn is_skipped_end(tag: TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::BlockQuote(_)
            | TagEnd::CodeBlock
            | TagEnd::HtmlBlock
            | TagEnd::Link
            | TagEnd::Image
            | TagEnd::Heading(_)
            | TagEnd::MetadataBlock(_)
    )
}

pub(super) fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The rest of `line` after the prefix, if the line is a command line: it starts with the
/// prefix (any case, after leading spaces) followed by a space or the end of the line.
pub(super) fn command_rest<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let line = line.trim_start();
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = &line[prefix.len()..];
    match rest.chars().next() {
        None => Some(rest),
        Some(c) if c.is_whitespace() => Some(rest),
        Some(_) => None,
    }
}
