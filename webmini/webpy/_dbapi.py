"""web.py's ``DB``: its query API and transactions over one ``Backend`` (see ``web.db``)."""

from __future__ import annotations

import contextvars
import re
import sys
import time
import weakref
from collections.abc import Mapping
from typing import Any

import gevent

from webmini.ctx import current_or_none
from webmini.stores.backend import Backend, Link, Outcome
from webmini.webpy._dbresults import ResultSet, SqliteResultSet
from webmini.webpy._sql import (
    SQLInputError,
    SQLParam,
    SQLQuery,
    _assignments,
    _query,
    reparam,
    sqlcount,
    sqllist,
    sqlname,
    sqlparam,
    sqlquote,
)

__all__ = ["DB", "DBContext", "SQLProducer", "Transaction", "TransactionError", "UnknownDB"]


class UnknownDB(Exception):
    """``database(dbn=...)`` names no registered database."""


class TransactionError(Exception):
    """A transaction was used in a way its state does not allow."""


# ------------------------------------------------------------------ transactions


class _Bound:
    """The connection a greenlet holds while it is inside a transaction."""

    __slots__ = ("link", "stack", "owner", "done", "__weakref__")

    def __init__(self, link: Link) -> None:
        self.link = link
        self.stack: list[Transaction] = []
        self.owner = gevent.getcurrent()
        self.done: Any = None  # weakref.finalize giving the connection back


class Transaction:
    """A transaction (or, nested, a savepoint): ``with db.transaction():`` or commit/rollback."""

    def __init__(self, db: DB) -> None:
        self.db = db
        bound = db._bound_here()
        if bound is None:
            link = db.backend.checkout()
            try:
                db._run_on(link, SQLQuery("BEGIN"), None)
            except BaseException:
                db.backend.checkin(link, False)
                raise
            bound = _Bound(link)
            # A transaction abandoned without commit or rollback (its greenlet
            # died) still gives its connection back, discarded, when collected.
            bound.done = weakref.finalize(bound, db.backend.checkin, link, False)
            db._tx.set(bound)
        else:
            db._run_on(bound.link, SQLQuery(f"SAVEPOINT webpy_sp_{len(bound.stack)}"), bound)
        self._bound = bound
        self.transaction_count = len(bound.stack)
        bound.stack.append(self)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exctype: Any, excvalue: Any, traceback: Any) -> None:
        if exctype is not None:
            self.rollback()
        else:
            self.commit()

    def _active(self) -> bool:
        bound = self._bound
        return bound.done is not None and len(bound.stack) > self.transaction_count

    def commit(self) -> None:
        """Commit (release the savepoint when nested)."""
        if not self._active():
            return
        if self.transaction_count:
            self._end(f"RELEASE SAVEPOINT webpy_sp_{self.transaction_count}")
        else:
            self._end("COMMIT")

    def rollback(self) -> None:
        """Roll back (to the savepoint when nested)."""
        if not self._active():
            return
        if self.transaction_count:
            self._end(f"ROLLBACK TO SAVEPOINT webpy_sp_{self.transaction_count}")
        else:
            self._end("ROLLBACK")

    def _end(self, sql: str) -> None:
        bound = self._bound
        del bound.stack[self.transaction_count:]
        if self.transaction_count:
            self.db._run_on(bound.link, SQLQuery(sql), bound)
            return
        ok = False
        try:
            if not bound.link.broken:
                self.db._run_on(bound.link, SQLQuery(sql), None)
                ok = True
        finally:
            self.db._unbind(bound, ok)


class DBContext:
    """web.py's ``db.ctx`` for the calling greenlet: its transactions and their connection.

    ``transactions`` lists the open transactions (outermost first, savepoints
    after); ``db`` is the driver connection they run on; ``commit()`` and
    ``rollback()`` end the outermost one. web.py keeps a connection per thread;
    webmini's statements outside a transaction each take a pooled connection
    and give it back, so ``db`` exists inside a transaction only.
    """

    __slots__ = ("_db",)

    def __init__(self, db: DB) -> None:
        self._db = db

    @property
    def transactions(self) -> list[Transaction]:
        """The calling greenlet's open transactions, outermost first."""
        bound = self._db._bound_here()
        return list(bound.stack) if bound is not None else []

    @property
    def dbq_count(self) -> int:
        """How many statements this database ran (web.py's counter)."""
        return self._db.dbq_count

    @property
    def db(self) -> Any:
        """The driver connection of the calling greenlet's transaction."""
        bound = self._db._bound_here()
        if bound is None:
            raise TransactionError(
                "db.ctx.db is the connection of a transaction: use it inside "
                "db.transaction() (outside one, each statement takes a pooled connection "
                "and gives it back)")
        return self._db.backend.driver_connection(bound.link)

    def commit(self) -> None:
        """Commit the calling greenlet's outermost transaction (nothing when there is none)."""
        stack = self.transactions
        if stack:
            stack[0].commit()

    def rollback(self) -> None:
        """Roll back the calling greenlet's outermost transaction (nothing when there is none)."""
        stack = self.transactions
        if stack:
            stack[0].rollback()


# ---------------------------------------------------------------------------- DB


class DB:
    """A database: web.py's query API over one ``Backend`` (see ``database()``)."""

    def __init__(self, backend: Backend, keywords: Mapping[str, Any] | None = None) -> None:
        self.backend = backend
        self.dbname = backend.dbname
        self.paramstyle = backend.paramstyle
        self.keywords = dict(keywords or {})
        from webmini.config import config

        #: Print every query with its duration to stderr (web.py's ``db.printing``).
        self.printing = bool(config.get("debug_sql", False))
        self.supports_multiple_insert = backend.dbname in ("mysql", "postgres")
        self._sequences: set[str] | None = None
        self._tx: contextvars.ContextVar[_Bound | None] = contextvars.ContextVar(
            f"webmini.db.{id(self):x}", default=None
        )
        self.dbq_count = 0

    def __repr__(self) -> str:
        return f"<DB {self.dbname}>"

    # -- connections -----------------------------------------------------------------

    def _bound_here(self) -> _Bound | None:
        bound = self._tx.get()
        if bound is not None and bound.done is not None and bound.owner is gevent.getcurrent():
            return bound
        return None

    def _unbind(self, bound: _Bound, ok: bool) -> None:
        done, bound.done = bound.done, None
        bound.stack.clear()
        if self._tx.get() is bound:
            self._tx.set(None)
        if done is not None:
            done.detach()
            self.backend.checkin(bound.link, ok and not bound.link.broken)

    def _run_on(self, link: Link, query: SQLQuery, bound: _Bound | None) -> Outcome:
        """Run ``query`` on ``link``; on an error inside a transaction, roll back the innermost."""
        sql, params = query.query(self.paramstyle), query.values()
        self.dbq_count += 1
        start = time.perf_counter() if self.printing else 0.0
        try:
            out = link.run(sql, params)
        except BaseException as exc:
            self.backend._mark(link, exc)
            if self.printing:
                print("ERR:", str(query), file=sys.stderr)
            if bound is not None and bound.stack:
                self._abort_innermost(bound)
            raise
        if self.printing:
            elapsed = round(time.perf_counter() - start, 2)
            print(f"{elapsed} ({self.dbq_count}): {query}", file=sys.stderr)
        return out

    def _abort_innermost(self, bound: _Bound) -> None:
        # web.py's rule: a failed statement rolls back the innermost transaction.
        if bound.link.broken:
            self._unbind(bound, False)  # the whole transaction is lost with its connection
            return
        with _suppress_errors():
            bound.stack[-1].rollback()
        if bound.link.broken:
            self._unbind(bound, False)

    def _run(self, *queries: SQLQuery) -> list[Outcome]:
        """Run statements on one connection: the greenlet's transaction or a pooled one."""
        bound = self._bound_here()
        if bound is not None:
            return [self._run_on(bound.link, q, bound) for q in queries]
        link = self.backend.checkout()
        ok = False
        try:
            outs = [self._run_on(link, q, None) for q in queries]
            ok = True
            return outs
        finally:
            self.backend.checkin(link, ok)

    def _result(self, out: Outcome) -> Any:
        if out.names is None:
            return out.rowcount
        if self.dbname == "sqlite":
            return SqliteResultSet(out.names, out.rows)
        return ResultSet(out.names, out.rows)

    # -- web.py's API ----------------------------------------------------------------

    def query(self, sql_query: Any, vars: Mapping[str, Any] | None = None,
              processed: bool = False, _test: bool = False) -> Any:
        """Run ``sql_query`` with ``$name`` values from ``vars``: rows, or the rowcount."""
        if not isinstance(sql_query, SQLQuery):
            sql_query = SQLQuery(sql_query) if processed else reparam(sql_query, vars or {})
        if _test:
            return sql_query
        return self._result(self._run(sql_query)[0])

    def select(self, tables: Any, vars: Mapping[str, Any] | None = None, what: Any = "*",
               where: Any = None, order: Any = None, group: Any = None, limit: Any = None,
               offset: Any = None, _test: bool = False) -> Any:
        """``SELECT what FROM tables WHERE ... GROUP BY ... ORDER BY ... LIMIT ... OFFSET ...``."""
        if vars is None:
            vars = {}
        _check_test(_test)
        # SECURITY: limit and offset become whole numbers (or a 400) before any SQL.
        if limit is not None:
            limit = sqlcount(limit, "limit")
        if offset is not None:
            offset = sqlcount(offset, "offset")
        qout = self._select_text(tables, vars, what, where, order, group, limit, offset)
        if qout is None:
            clauses = [
                self.gen_clause(sql, val, vars)
                for sql, val in self.sql_clauses(what, tables, where, group, order, limit, offset)
                if val is not None
            ]
            qout = SQLQuery.join(clauses)
        if _test:
            return qout
        return self.query(qout, processed=True)

    def _select_text(self, tables: Any, vars: Mapping[str, Any], what: Any, where: Any,
                     order: Any, group: Any, limit: Any, offset: Any) -> SQLQuery | None:
        """PERF: a SELECT whose clauses are all non-empty text is one template.

        Interpolating "SELECT what FROM t WHERE w ..." at once gives the same
        query as web.py's clause by clause, and the whole template's parse is
        cached. Anything else (a dict or int where, a subclass with its own
        clauses, a falsy limit) takes the general path (None).
        """
        if type(self).gen_clause is not DB.gen_clause or (
            type(self).sql_clauses is not DB.sql_clauses
        ):
            return None
        parts = []
        for keyword, val in (("SELECT", what), ("FROM", tables), ("WHERE", where),
                             ("GROUP BY", group), ("ORDER BY", order)):
            if val is None:
                continue
            if keyword == "FROM" and type(val) is not str:
                val = sqllist(val)
            if type(val) is not str or not val:
                return None
            parts.append(f"{keyword} {val}")
        tail: list[Any] = []
        for keyword, val in ((" LIMIT ", limit), (" OFFSET ", offset)):
            if val is None:
                continue
            if type(val) is not int or not val:
                return None
            tail += [keyword, SQLParam(val)]
        q = reparam(" ".join(parts), vars)
        q.items += tail
        return q

    def where(self, table: str, what: Any = "*", order: Any = None, group: Any = None,
              limit: Any = None, offset: Any = None, _test: bool = False, **kwargs: Any) -> Any:
        """Select rows of ``table`` whose columns equal the keyword values."""
        _check_test(_test)
        if what != "*" or order is not None or group is not None:
            _not_spread_from_request(what=what, order=order, group=group)
        return self.select(table, what=what, order=order, group=group, limit=limit,
                           offset=offset, _test=_test, where=self._where_dict(kwargs))

    def sql_clauses(self, what: Any, tables: Any, where: Any, group: Any, order: Any,
                    limit: Any, offset: Any) -> tuple[tuple[str, Any], ...]:
        """The (keyword, value) pairs a SELECT is built from."""
        return (
            ("SELECT", what),
            ("FROM", sqllist(tables)),
            ("WHERE", where),
            ("GROUP BY", group),
            ("ORDER BY", order),
            # SECURITY: limit and offset are parameters (select() made them ints).
            ("LIMIT", limit and SQLParam(limit).sqlquery()),
            ("OFFSET", offset and SQLParam(offset).sqlquery()),
        )

    def gen_clause(self, sql: str, val: Any, vars: Mapping[str, Any]) -> Any:
        """One clause: ``sql`` followed by ``val`` (text with $names, a dict, a query...)."""
        nout: SQLQuery | None
        if isinstance(val, int):
            nout = "id = " + sqlquote(val) if sql == "WHERE" else SQLQuery(val)
        elif isinstance(val, (list, tuple)) and len(val) == 2:
            nout = _pair_query(val)
        elif sql == "WHERE" and isinstance(val, dict):
            nout = self._where_dict(val)
        elif isinstance(val, SQLQuery):
            nout = val
        else:
            nout = reparam(val, vars)
        if sql and nout:
            return _query([sql + " ", *nout.items]) if type(nout) is SQLQuery else sql + " " + nout
        return sql or nout

    def _where(self, where: Any, vars: Mapping[str, Any]) -> Any:
        if isinstance(where, int):
            return "id = " + sqlparam(where)
        if isinstance(where, (list, tuple)) and len(where) == 2:
            return _pair_query(where)
        if isinstance(where, dict):
            return self._where_dict(where)
        if isinstance(where, SQLQuery):
            return where
        return reparam(where, vars)

    def _where_dict(self, where: Mapping[str, Any]) -> SQLQuery | None:
        clauses = [self._column(k) + " = " + sqlquote(v) for k, v in sorted(where.items())]
        return SQLQuery.join(clauses, " AND ") if clauses else None

    def _column(self, name: str) -> str:
        """``name`` if it is a column name in this database's dialect, else ``SQLInputError``."""
        # SECURITY: keyword and dict-key names are SQL text; see sqlname().
        return sqlname(name, self.dbname)

    def insert(self, tablename: str, seqname: Any = None, _test: bool = False,
               **values: Any) -> Any:
        """Insert one row; return its id (``seqname=False``: None)."""
        _check_test(_test)
        if values:
            keys = [self._column(k) for k in sorted(values)]
            items: list[Any] = [f"INSERT INTO {tablename} (", ", ".join(keys), ") VALUES ("]
            for i, k in enumerate(keys):
                if i:
                    items.append(", ")
                items.append(SQLParam(values[k]))
            items.append(")")
            q: Any = SQLQuery(items)  # SQLQuery() turns SQLLiteral values into SQL text
        else:
            q = SQLQuery(self._get_insert_default_values_query(tablename))
        if _test:
            return q
        return self._insert_and_id(q, tablename, seqname, 1)

    def _insert_and_id(self, q: SQLQuery, tablename: str, seqname: Any, rows: int) -> Any:
        if seqname is False:
            self._run(q)
            return None
        if self.dbname == "postgres":
            seq = self._sequence(tablename, seqname)
            if seq is None:
                self._run(q)
                return None
            # The id comes from the same session, right after the insert.
            ident = self._run(q, SQLQuery(["SELECT currval(", SQLParam(seq), ")"]))[1].rows[0][0]
            return ident if rows == 1 else range(ident - rows + 1, ident + 1)
        ident = self._run(q)[0].lastrowid
        if rows == 1:
            return ident
        if ident is None:
            return None
        if self.dbname == "mysql":  # MySQL reports the first id of a multi-row insert
            return range(ident, ident + rows)
        return range(ident - rows + 1, ident + 1)

    def _sequence(self, tablename: str, seqname: str | None) -> str | None:
        if seqname is None:
            guess = tablename + "_id_seq"
            return guess if guess in self._get_all_sequences() else None
        if type(seqname) is not str or not _SEQNAME.fullmatch(seqname):
            raise SQLInputError(f"Invalid sequence name: {seqname!r:.80}",
                                "bad request: not a sequence name")
        return seqname

    def _get_all_sequences(self) -> set[str]:
        if self._sequences is None:
            rows = self.query("SELECT c.relname FROM pg_class c WHERE c.relkind = 'S'")
            self._sequences = {row.relname for row in rows}
        return self._sequences

    def _get_insert_default_values_query(self, table: str) -> str:
        if self.dbname == "mysql":
            return f"INSERT INTO {table} () VALUES()"
        return f"INSERT INTO {table} DEFAULT VALUES"

    def multiple_insert(self, tablename: str, values: list[dict[str, Any]], seqname: Any = None,
                        _test: bool = False) -> Any:
        """Insert many rows (same keys each); return their ids (a list or a range)."""
        if not values:
            return []
        if not self.supports_multiple_insert:
            out = [self.insert(tablename, seqname=seqname, _test=_test, **v) for v in values]
            return None if seqname is False else out
        keys = values[0].keys()
        for v in values:
            if v.keys() != keys:
                raise ValueError("Not all rows have the same keys")
        names = [self._column(k) for k in sorted(keys)]
        q = SQLQuery(f"INSERT INTO {tablename} ({', '.join(names)}) VALUES ")
        for i, row in enumerate(values):
            if i:
                q.append(", ")
            SQLQuery.join([SQLParam(row[k]) for k in names], sep=", ", target=q,
                          prefix="(", suffix=")")
        q = SQLQuery(q.items)  # SQLLiteral values become SQL text (web.py sends the object)
        if _test:
            return q
        return self._insert_and_id(q, tablename, seqname, len(values))

    def update(self, tables: Any, where: Any, vars: Mapping[str, Any] | None = None,
               _test: bool = False, **values: Any) -> Any:
        """Set the keyword columns on rows matching ``where``; return the rowcount."""
        _check_test(_test)
        _check_vars(vars)
        sets = _assignments([(self._column(k), v) for k, v in sorted(values.items())], ", ")
        where_q = self._where(where, vars or {})
        q = _query(["UPDATE ", sqllist(tables), " SET ", *sets.items, " WHERE ", *where_q.items])
        if _test:
            return q
        return self._run(q)[0].rowcount

    def delete(self, table: str, where: Any, using: Any = None,
               vars: Mapping[str, Any] | None = None, _test: bool = False) -> Any:
        """Delete rows matching ``where``; return the rowcount."""
        _check_vars(vars)
        where_q = self._where(where, vars or {})
        q: Any = "DELETE FROM " + table
        if using:
            q += " USING " + sqllist(using)
        if where_q:
            q += " WHERE " + where_q
        if _test:
            return q
        if not isinstance(q, SQLQuery):
            q = SQLQuery(q)
        return self._run(q)[0].rowcount

    def transaction(self) -> Transaction:
        """Begin a transaction for this greenlet (a savepoint inside another one)."""
        return Transaction(self)

    @property
    def ctx(self) -> DBContext:
        """web.py's ``db.ctx``: the calling greenlet's transactions and their connection."""
        return DBContext(self)

    def close(self) -> None:
        """Close the idle pooled connections."""
        self.backend.close()


#: Old web.py called DB's base class SQLProducer; ported code may still name it.
SQLProducer = DB

_SEQNAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_$]*$")


def _check_test(_test: Any) -> None:
    # SECURITY: a request spread into where()/insert()/update() can name
    # "_test"; its string value must not silently turn the call into a no-op.
    if type(_test) is str:
        raise SQLInputError(f"_test must be a bool, not {_test!r:.80}",
                            "bad request: _test is not a column name")


def _not_spread_from_request(**sql: Any) -> None:
    """Refuse a request field arriving unchanged as where()'s argument of the same name."""
    # SECURITY: db.where("t", **web.input()) hands the client where()'s own
    # what/order/group, which are SQL ("?what=(SELECT v FROM secrets) AS x").
    # A field of that name whose very object (identity, not equality) is the
    # argument came from the request: refused, the app never wrote that SQL.
    c = current_or_none()
    if c is None:
        return
    fields = [parsed[0] for parsed in (c.parsed_query, c.parsed_form) if parsed]
    if type(c.parsed_json) is dict:
        fields.append(c.parsed_json)
    for name, value in sql.items():
        if value is not None and any(f.get(name) is value for f in fields):
            raise SQLInputError(
                f"where()'s {name}= is SQL and came from the request's field {name!r}:"
                " pick the request's columns (or use web.db.order_by for sorting)",
                f"bad request: {name} is not a column name")


def _check_vars(vars: Any) -> None:
    # A request spread into update() can name "vars": a 400, not a TypeError.
    if vars is not None and not isinstance(vars, Mapping):
        raise SQLInputError(f"vars must be a mapping, not {vars!r:.80}",
                            "bad request: vars is not a column name")


def _pair_query(pair: Any) -> SQLQuery:
    # web.py's old (text, values) form: only the text is used.
    return SQLQuery(pair[0])


class _suppress_errors:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exctype: Any, exc: Any, tb: Any) -> bool:
        return exctype is not None and issubclass(exctype, Exception)
