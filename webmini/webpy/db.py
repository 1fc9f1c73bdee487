"""``web.database`` / ``web.db``: web.py's database API over cooperative connections.

    db = web.database(dbn="sqlite", db="app.db")            # or a URL:
    db = web.database("postgres://app:secret@127.0.0.1/app?pool_size=10")
    for row in db.select("todo", where="done = $d", vars={"d": False}, order="id"):
        print(row.id, row.title)
    new_id = db.insert("todo", title="write docs")
    with db.transaction():
        db.update("todo", where="id = $id", vars={"id": new_id}, done=True)

The API, the results and the SQL text (``_test=True``) are web.py 0.76's.
Values always travel as driver parameters; column names given as keywords or
dict keys must be names (else ``SQLInputError``, a ValueError answered as 400);
``what``, ``where`` text, ``order``, ``group`` and table names are SQL, as in
web.py (``order_by()`` builds a safe ``order=`` from a client's sort key). ``dbn="mysql"`` runs on
``webmini.stores.mysql.Database``'s pool, ``"postgres"`` on pg8000 (pure
Python, so gevent's sockets make it cooperative), ``"sqlite"`` with each
connection's calls in its own native thread, so none blocks the gevent hub.
A transaction belongs to the greenlet that opened it; a nested one is a
SAVEPOINT.
"""

from __future__ import annotations

from webmini.webpy._dbapi import (
    DB,
    DBContext,
    SQLProducer,
    Transaction,
    TransactionError,
    UnknownDB,
)
from webmini.webpy._dbopen import database, dburl2dict, register_database
from webmini.webpy._dbresults import BaseResultSet
from webmini.webpy._sql import (
    SQLInputError,
    SQLLiteral,
    SQLParam,
    SQLQuery,
    UnknownParamstyle,
    order_by,
    reparam,
    sqlcount,
    sqlify,
    sqllist,
    sqlliteral,
    sqlname,
    sqlors,
    sqlparam,
    sqlquote,
    sqlwhere,
)

__all__ = [
    "UnknownParamstyle",
    "UnknownDB",
    "TransactionError",
    "sqllist",
    "sqlors",
    "reparam",
    "sqlquote",
    "SQLQuery",
    "SQLParam",
    "sqlparam",
    "SQLLiteral",
    "sqlliteral",
    "SQLProducer",
    "database",
    "DB",
    "DBContext",
]

# Names of web.py's db module that are web.db.<name> without being web.<name>,
# and webmini's own: order_by, sqlname, sqlcount, SQLInputError.
_MODULE_ONLY = (sqlify, sqlwhere, dburl2dict, register_database, BaseResultSet, Transaction,
                order_by, sqlname, sqlcount, SQLInputError)
