"""Load schema.sql into a MariaDB server and create the benchmark's user."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).resolve().parent / "schema.sql"
DB_USER, DB_NAME = "benchmarkdbuser", "hello_world"


def statements(sql: str) -> list[str]:
    """schema.sql's statements: comments dropped, split at a semicolon ending a line."""
    sql = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", sql, flags=re.M) if s.strip()]


def load_schema(root: Any, password: str, host: str, port: int) -> str:
    """Run schema.sql on ``root`` (a root pymysql connection); return the app's database URL."""
    with root.cursor() as cur:
        for statement in statements(SCHEMA.read_text()):
            cur.execute(statement)
        cur.execute(f"CREATE USER IF NOT EXISTS '{DB_USER}'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute(f"ALTER USER '{DB_USER}'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute(f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'%'")
    return f"mysql://{DB_USER}:{password}@{host}:{port}/{DB_NAME}"


def load_into(server: Any, password: str | None = None) -> str:
    """Load schema.sql into a private MariaDB (localservices/) through its root
    connection; return the app's database URL (``password``: random when not given)."""
    root = server.root_connection()
    try:
        return load_schema(root, password or secrets.token_urlsafe(12), server.host, server.port)
    finally:
        root.close()
