"""A Scan page's typed AttributeValues as plain JSON records, with the PII policy applied.

DynamoDB's wire form wraps every value in its type: `{"S": "x"}`, `{"N": "1.50"}`,
`{"M": {...}}`. A record is the item with the wrappers gone and nothing else changed: N stays
its exact decimal text (a JSON string: the staging mapping types it, no float in between), B
stays its base64 text, SS/NS/BS become arrays of their texts, M and L nest, NULL is null and
BOOL a boolean. Only wrappers are removed, so no value is re-encoded and nothing is lost.

Why per page in Python and not in Arrow or the engine: unwrapping is a recursion of arbitrary
depth (M in L in M...) over keys that are user data. Arrow's and DuckDB's JSON readers infer a
struct per page, which folds attribute names that differ only in case (DuckDB), turns ISO-like
strings into timestamps (Arrow), and cannot recurse; so one tight function unwraps each page
after the C parser has read it, and the records go to Arrow as one array per page.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from anchorflow.errors import TransientSourceError
from anchorflow.sources.base import RECORD_SCHEMA, Rejected
from anchorflow.sources.dynamodb.config import PiiPolicy
from anchorflow.sources.lines import LONG_LINE_PREFIX, repeated_string

UNWRAPPED = frozenset({"S", "N", "B", "BOOL", "SS", "NS", "BS"})  # already plain JSON inside
# Built once: `json.dumps` with options builds an encoder per call (a quarter of the cost).
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class BadValue(ValueError):
    """A value whose type tag is not one DynamoDB defines."""


@dataclass
class Page:
    """One Scan page as records, and what DynamoDB said about it."""

    origin: str
    records: pa.Table
    rejected: list[Rejected]
    last_key: dict[str, Any] | None  # LastEvaluatedKey: None once the segment is done
    scanned: int
    bytes: int


def plain(value: dict[str, Any]) -> Any:
    """One AttributeValue without its type wrappers, however deeply nested."""
    for tag, inner in value.items():  # exactly one
        if tag in UNWRAPPED:
            return inner
        if tag == "M":
            return {name: plain(v) for name, v in inner.items()}
        if tag == "L":
            return [plain(v) for v in inner]
        if tag == "NULL":
            return None
        raise BadValue(f"unknown AttributeValue type {tag!r}")
    raise BadValue("an AttributeValue without a type")


class PageReader:
    """Scan pages of one source into records: unwrapped, PII removed, as Arrow text."""

    def __init__(self, policy: PiiPolicy, stamp: tuple[str, str] | None = None) -> None:
        self._stamp = stamp  # (key, the scan's start time) added to every record
        self._drop = [path.split(".") for path in policy.drop]
        self._hash = [path.split(".") for path in policy.hash]
        self._salt = policy.salt.get_secret_value().encode() if policy.salt else b""

    def read(self, origin: str, body: bytes) -> Page:
        try:
            page = json.loads(body)
        except ValueError as error:  # not what DynamoDB sends: a proxy's page, a cut body
            raise TransientSourceError(
                f"{origin}: the Scan answer is not JSON ({error}); run again later"
            ) from None
        items: list[dict[str, Any]] = page.get("Items", [])
        texts: list[str] = []
        numbers: list[int] = []
        rejected: list[Rejected] = []
        for line_no, item in enumerate(items, 1):
            try:
                texts.append(self._record(item))
                numbers.append(line_no)
            except (BadValue, AttributeError, TypeError) as error:
                rejected.append(_rejected(origin, line_no, item, str(error)))
        try:
            records = _table(origin, texts, numbers)
        except UnicodeEncodeError:  # rare: an escaped half of a surrogate pair somewhere
            records = self._without_surrogates(origin, items, texts, numbers, rejected)
        return Page(
            origin,
            records,
            rejected,
            page.get("LastEvaluatedKey"),
            int(page.get("ScannedCount", len(items))),
            len(body),
        )

    @staticmethod
    def _without_surrogates(
        origin: str, items: list[dict[str, Any]], texts: list[str], numbers: list[int],
        rejected: list[Rejected],
    ) -> pa.Table:  # fmt: skip
        """The slow path, only for a page holding text that is not Unicode: item by item."""
        good_texts, good_numbers = [], []
        for text, line_no in zip(texts, numbers, strict=True):
            try:
                text.encode()
            except UnicodeEncodeError as error:
                reason = f"text that is not valid Unicode ({error.reason})"
                rejected.append(_rejected(origin, line_no, items[line_no - 1], reason))
                continue
            good_texts.append(text)
            good_numbers.append(line_no)
        rejected.sort(key=lambda r: r.line_no)
        return _table(origin, good_texts, good_numbers)

    def _record(self, item: dict[str, Any]) -> str:
        record = {name: plain(value) for name, value in item.items()}
        for path in self._drop:
            _apply(record, path, None)
        for path in self._hash:
            _apply(record, path, self._hashed)
        if self._stamp is not None:
            record[self._stamp[0]] = self._stamp[1]
        return ENCODER.encode(record)

    def _hashed(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return hashlib.sha256(self._salt + text.encode("utf-8", "surrogatepass")).hexdigest()


def _rejected(origin: str, line_no: int, item: Any, why: str) -> Rejected:
    """An item quarantined with the reason and its text as it came (ASCII-escaped, bounded)."""
    reason = f"item not in DynamoDB's AttributeValue form: {why}"
    return Rejected(origin, line_no, reason, json.dumps(item)[:LONG_LINE_PREFIX])


def _apply(record: dict[str, Any], path: list[str], change: Any) -> None:
    """Drop (`change` None) or rewrite the value at `path`; a missing path is left alone."""
    node: Any = record
    for step in path[:-1]:
        node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            return
    if not isinstance(node, dict) or path[-1] not in node:
        return
    if change is None:
        del node[path[-1]]
    else:
        node[path[-1]] = change(node[path[-1]])


def _table(origin: str, texts: list[str], numbers: list[int]) -> pa.Table:
    return pa.table(
        {
            "origin": repeated_string(origin, len(texts)),
            "line_no": pa.array(np.asarray(numbers, dtype=np.int64)),
            "record": pa.array(texts, pa.string()).cast(pa.string_view()),
        },
        schema=RECORD_SCHEMA,
    )
