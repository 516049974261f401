"""Reading the project's .sql files (DDL and fixtures) into single statements."""
from __future__ import annotations

from pathlib import Path


def statements(path: Path) -> list[str]:
    """Statements of a file whose statements end with ';' and whose comments are whole '--' lines."""
    body = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
    return [stmt.strip() for stmt in body.split(";") if stmt.strip()]
