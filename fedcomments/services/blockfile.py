"""Read and write domain blocklists: Mastodon's CSV export format and plain lists; pure.

Mastodon (4.1+) exports `#domain,#severity,#reject_media,#reject_reports,#public_comment,
#obfuscate`. Only `suspend` means "have nothing to do with this server", which is what a
block is here; `silence` (limit) and `noop` rows have no equivalent in a comment server
(there is no public timeline to hide a domain from) and are reported as skipped, with
their line numbers, never blocked.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from fedcomments.domains import normalize_domain
from fedcomments.errors import InvalidInput

MASTODON_HEADER = ("#domain", "#severity", "#reject_media", "#reject_reports",
                   "#public_comment", "#obfuscate")
SEVERITIES = ("suspend", "silence", "noop")
MAX_LINES = 100_000
MAX_REASON = 1000


@dataclass(frozen=True)
class Row:
    """A domain to block, from line `line`."""

    line: int
    domain: str
    reason: str = ""


@dataclass(frozen=True)
class LineNote:
    """A line that was not turned into a block, and why."""

    line: int
    text: str
    reason: str


@dataclass
class ParsedList:
    format: str  # "mastodon" or "plain"
    rows: list[Row] = field(default_factory=list)
    duplicates: list[LineNote] = field(default_factory=list)
    skipped: list[LineNote] = field(default_factory=list)
    invalid: list[LineNote] = field(default_factory=list)


def is_mastodon_csv(text: str) -> bool:
    """A Mastodon export starts with a header row naming the domain column."""
    for line in text.splitlines():
        if line.strip():
            first = line.strip().lower().split(",", 1)[0].strip().strip('"')
            return first in ("#domain", "domain") and "," in line
    return False


def parse_blocklist(text: str) -> ParsedList:
    """Parse a Mastodon CSV or a plain list (one domain per line, `#` comments)."""
    text = text.removeprefix("\ufeff")  # spreadsheets save CSV with a byte-order mark
    if text.count("\n") > MAX_LINES:
        raise InvalidInput(f"file: more than {MAX_LINES} lines", field="file")
    if is_mastodon_csv(text):
        return _parse_csv(text)
    return _parse_plain(text)


def _add(parsed: ParsedList, seen: dict[str, int], line: int, raw: str, reason: str) -> None:
    try:
        domain = normalize_domain(raw)
    except InvalidInput as exc:
        parsed.invalid.append(LineNote(line, raw, str(exc).removeprefix("domain: ")))
        return
    if domain in seen:
        parsed.duplicates.append(LineNote(line, raw, f"{domain} already on line {seen[domain]}"))
        return
    seen[domain] = line
    parsed.rows.append(Row(line, domain, reason[:MAX_REASON]))


def _parse_plain(text: str) -> ParsedList:
    parsed = ParsedList("plain")
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if any(c.isspace() for c in entry) or "," in entry:
            parsed.invalid.append(LineNote(number, entry, "one domain per line expected"))
            continue
        _add(parsed, seen, number, entry, "")
    return parsed


def _parse_csv(text: str) -> ParsedList:
    parsed = ParsedList("mastodon")
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text))
    columns: dict[str, int] = {}
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            parsed.invalid.append(LineNote(start, "", f"malformed CSV ({exc})"))
            break
        if not any(cell.strip() for cell in record):
            continue
        if not columns:
            # Mastodon writes "#domain"; older tools and hand-made files drop the '#'.
            columns = {cell.strip().lower().lstrip("#"): i for i, cell in enumerate(record)}
            continue
        _csv_row(parsed, seen, start, record, columns)
    return parsed


def _csv_row(parsed: ParsedList, seen: dict[str, int], line: int, record: list[str],
             columns: dict[str, int]) -> None:
    def cell(name: str) -> str:
        index = columns.get(name)
        return record[index].strip() if index is not None and index < len(record) else ""

    raw = ",".join(record)
    domain = cell("domain")
    if not domain:
        parsed.invalid.append(LineNote(line, raw, "no domain"))
        return
    # A file with no severity column is a list of domains to block.
    severity = cell("severity").lower() or "suspend"
    if severity not in SEVERITIES:
        parsed.invalid.append(LineNote(
            line, raw, f"unknown severity {severity!r} (expected {', '.join(SEVERITIES)})"))
        return
    if severity != "suspend":
        parsed.skipped.append(LineNote(
            line, domain, f"severity {severity}: only suspend rows become blocks"))
        return
    _add(parsed, seen, line, domain, cell("public_comment"))


def write_mastodon_csv(blocks: Iterable[tuple[str, str]]) -> str:
    """Mastodon's export format: every block is a `suspend`; the reason is the comment."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MASTODON_HEADER)
    for domain, reason in blocks:
        writer.writerow((domain, "suspend", "false", "false", reason, "false"))
    return out.getvalue()


def write_plain(domains: Iterable[str]) -> str:
    return "".join(f"{d}\n" for d in domains)
