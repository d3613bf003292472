"""Value types shared by the project file's sections (names and SQL types)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator
from sqlglot import exp

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ValueError(f"expected a name of letters, digits and _ (not first), got {value!r}")
    return value


Identifier = Annotated[str, BeforeValidator(_identifier)]


def canonical_type(value: str) -> str:
    """A SQL type as DuckDB spells it, or ValueError naming what is wrong."""
    try:
        sql = exp.DataType.build(value, dialect="duckdb").sql("duckdb")
    except Exception:  # sqlglot raises several kinds for a bad type
        raise ValueError(
            f"expected a SQL type such as VARCHAR or TIMESTAMP, got {value!r}"
        ) from None
    # sqlglot spells DuckDB's VARCHAR (and its aliases) TEXT; keep the name DuckDB and the
    # rest of anchorflow use (statistics, messages, the default type).
    return "VARCHAR" if sql == "TEXT" else sql
