#!/usr/bin/env python3
"""Remove one TfPilot request's bounded block from Terraform files.

Usage: remove_block.py <request-id> <file>...

Each request owns exactly the lines between `# --- tfpilot:begin:<id> ---` and
`# --- tfpilot:end:<id> ---`. This script follows the same rules as TfPilot's own block editor
(src/terraform/blocks.rs; a test runs both on the same files and compares the bytes):

* every file is checked first; unbalanced, duplicated, nested or mismatched markers, or a
  marker whose id is not a lowercase UUID, are an error naming the file and line, and no file
  is written;
* the block's lines are removed, with the blank line before it when that cannot join two
  non-blank lines; every other byte (CRLF, hand-written code, other blocks) is kept;
* a file without the block is left untouched.

Exit status: 0 on success (whether or not a block was found), 1 on an error.
"""

import re
import sys

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BEGIN = "tfpilot:begin:"
END = "tfpilot:end:"


class MarkerError(Exception):
    pass


def classify(line, number):
    """Return ("begin"|"end", id) for a marker line, None for other lines."""
    text = line.strip()
    if not (text.startswith("#") or text.startswith("//") or text.startswith("/*")):
        return None
    lower = text.encode("utf-8").lower().decode("utf-8")  # ASCII-only, like the Rust editor
    if BEGIN not in lower and END not in lower:
        return None
    if not (text.startswith("# --- ") and text.endswith(" ---") and len(text) >= 10):
        raise MarkerError(f"line {number}: `{text[:120]}` looks like a TfPilot marker but is not one")
    inner = text[len("# --- "):-len(" ---")]
    if inner.startswith(BEGIN):
        kind, rid = "begin", inner[len(BEGIN):]
    elif inner.startswith(END):
        kind, rid = "end", inner[len(END):]
    else:
        raise MarkerError(f"line {number}: `{text[:120]}` looks like a TfPilot marker but is not one")
    if not UUID.match(rid):
        raise MarkerError(f"line {number}: the marker's id `{rid[:80]}` is not a request id")
    return kind, rid


def parse_blocks(text):
    """All blocks as (id, start offset, end offset), after checking every marker."""
    blocks = []
    seen = {}
    open_block = None
    offset = 0
    # Lines end at "\n" only (str.splitlines would also split at "\r", "\x0c", "\u2028"...).
    lines = [piece + "\n" for piece in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        start = offset
        offset += len(line)
        marker = classify(line, number)
        if marker is None:
            continue
        kind, rid = marker
        if kind == "begin":
            if open_block is not None:
                raise MarkerError(f"line {number}: a block begins inside the block of request {open_block[0]} (line {open_block[1]})")
            if rid in seen:
                raise MarkerError(f"line {number}: request {rid} has a second block (the first begins on line {seen[rid]})")
            seen[rid] = number
            open_block = (rid, number, start)
        else:
            if open_block is None:
                raise MarkerError(f"line {number}: the end marker of request {rid} has no begin marker before it")
            if open_block[0] != rid:
                raise MarkerError(f"line {number}: the end marker is for request {rid}, but the open block (line {open_block[1]}) is request {open_block[0]}")
            blocks.append((rid, open_block[2], offset))
            open_block = None
    if open_block is not None:
        raise MarkerError(f"line {open_block[1]}: the block of request {open_block[0]} is never closed")
    return blocks


def remove_block(text, rid):
    found = [b for b in parse_blocks(text) if b[0] == rid]
    if not found:
        return text
    _, start, end = found[0]
    after = text[end:]
    next_line = after.split("\n", 1)[0]
    if start > 0 and (after == "" or next_line.strip() == ""):
        before = text[: start - 1]
        prev_start = before.rfind("\n") + 1
        if text[prev_start : start - 1].strip() == "":
            start = prev_start
    return text[:start] + after


def main(argv):
    if len(argv) < 3 or not UUID.match(argv[1]):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 1
    rid = argv[1]
    results = []
    for path in argv[2:]:
        # newline="" keeps CRLF line breaks exactly as they are.
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        try:
            results.append((path, text, remove_block(text, rid)))
        except MarkerError as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 1
    for path, old, new in results:
        if new != old:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(new)
            print(f"{path}: removed the block of request {rid}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
