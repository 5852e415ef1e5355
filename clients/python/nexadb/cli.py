"""The `nexadb` command: documents and vectors from the shell.

    nexadb [--host H] [--port P] [--api-key K] [--tls] [--ca-file F] COMMAND ...

Commands: status, stats, collections, insert, find, count, aggregate, update, delete,
search, index, import, export, backup, shell. `nexadb COMMAND --help` describes each. JSON arguments
are JSON text ('{"age": {"$gt": 25}}'); results are printed one JSON document per line
(JSON lines), so they pipe into jq or back into `nexadb import`. Both are MongoDB's
relaxed Extended JSON, as over REST: {"$date": "2024-01-31T12:00:00Z"} for a date,
{"$binary": {"base64": ..., "subType": "00"}} for bytes.
The API key defaults to $NEXADB_API_KEY, host and port to $NEXADB_HOST and $NEXADB_PORT.
"""
from __future__ import annotations

import argparse
import cmd
import json
import os
import sys
import time
from typing import Any, Iterable, Iterator, List, Optional, TextIO

from bson import json_util
from bson.json_util import JSONMode, JSONOptions

from . import errors
from ._convert import UTC
from .client import DEFAULT_PORT, NexaDB

_EJSON = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True, tzinfo=UTC)


def _loads(text: str) -> Any:
    """JSON text, with Extended JSON's $date, $binary, $numberLong as Python values."""
    return json_util.loads(text, json_options=_EJSON)


def _dumps(doc: Any, indent: Optional[int] = None) -> str:
    return json_util.dumps(doc, json_options=_EJSON, indent=indent, ensure_ascii=False)


class UsageError(Exception):
    pass


def _json_arg(text: Optional[str], what: str, want: type = dict) -> Any:
    if text is None:
        return None
    try:
        v = _loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{what}: not valid JSON ({e.msg} at column {e.colno})") from None
    except (ValueError, TypeError) as e:  # a malformed $date, $binary, ...
        raise UsageError(f"{what}: {e}") from None
    if not isinstance(v, want):
        raise UsageError(f"{what}: expected a JSON {'object' if want is dict else 'array'}")
    return v


def _dump(doc: Any, out: TextIO, pretty: bool = False) -> None:
    out.write(_dumps(doc, indent=2 if pretty else None))
    out.write("\n")


class Progress:
    """A one-line progress bar on stderr: count, rate and, when the total is known, a bar
    and percentage. Drawn at most 10 times a second, and once more at the end."""

    def __init__(self, label: str, total: Optional[int] = None, enabled: bool = True,
                 stream: Optional[TextIO] = None, unit: str = "docs"):
        self.label, self.total, self.enabled, self.unit = label, total, enabled, unit
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, k: int) -> None:
        self.n += k
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.1:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.n / max(now - self.t0, 1e-9)
        if self.total:
            frac = min(self.n / self.total, 1.0)
            bar = "#" * int(frac * 30)
            line = f"{self.label} [{bar:<30}] {frac * 100:5.1f}% {self.n}/{self.total} {self.unit}"
        else:
            line = f"{self.label} {self.n} {self.unit}"
        self.stream.write(f"\r{line} ({rate:,.0f}/s)")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            if self.total is None:
                self.total = self.n
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


def _read_jsonl(f: TextIO, path: str) -> Iterator[dict]:
    for lineno, line in enumerate(f, 1):
        line = line.strip()
        if not line:
            continue
        try:
            doc = _loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        except (ValueError, TypeError) as e:
            raise UsageError(f"{path}:{lineno}: {e}") from None
        if not isinstance(doc, dict):
            raise UsageError(f"{path}:{lineno}: expected a JSON object per line")
        yield doc


def _batches(it: Iterable[dict], n: int) -> Iterator[List[dict]]:
    batch: List[dict] = []
    for x in it:
        batch.append(x)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _count_lines(path: str) -> Optional[int]:
    if path == "-":
        return None
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


# -- commands ------------------------------------------------------------------------------
# Each takes (db, args, out) and returns an exit status.

def cmd_status(db: NexaDB, a, out) -> int:
    _dump(db.status(), out, pretty=True)
    return 0


def cmd_stats(db: NexaDB, a, out) -> int:
    _dump(db.stats(), out, pretty=True)
    return 0


def cmd_collections(db: NexaDB, a, out) -> int:
    for c in db.list_collections():
        _dump(c, out)
    for c in db.list_vector_collections():
        _dump(c, out)
    return 0


def cmd_insert(db: NexaDB, a, out) -> int:
    text = a.document if a.document is not None else sys.stdin.read()
    doc = _json_arg(text, "document", (dict, list))
    docs = doc if isinstance(doc, list) else [doc]
    if any(not isinstance(d, dict) for d in docs):
        raise UsageError("document: expected an object or an array of objects")
    ids = db.collection(a.collection).insert_many(docs) if isinstance(doc, list) \
        else [db.collection(a.collection).insert(doc)]
    for i in ids:
        out.write(i + "\n")
    return 0


def _sort_arg(text: Optional[str]):
    """'age' or '-age,name' -> [('age', -1), ('name', 1)]."""
    if not text:
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        out.append((part[1:], -1) if part.startswith("-") else (part, 1))
    return out


def cmd_find(db: NexaDB, a, out) -> int:
    cur = db.collection(a.collection).find_iter(
        _json_arg(a.query, "query"), limit=a.limit, skip=a.skip, sort=_sort_arg(a.sort),
        projection=_json_arg(a.projection, "projection"))
    for d in cur:
        _dump(d, out, a.pretty)
    return 0


def cmd_count(db: NexaDB, a, out) -> int:
    out.write(f"{db.collection(a.collection).count(_json_arg(a.query, 'query'))}\n")
    return 0


def cmd_aggregate(db: NexaDB, a, out) -> int:
    for d in db.collection(a.collection).aggregate_iter(_json_arg(a.pipeline, "pipeline", list)):
        _dump(d, out, a.pretty)
    return 0


def cmd_update(db: NexaDB, a, out) -> int:
    c = db.collection(a.collection)
    if a.id is not None:
        ok = c.update(a.id, _json_arg(a.update, "update"))
        out.write("updated\n" if ok else "not found\n")
        return 0 if ok else 1
    n = c.update_many(_json_arg(a.query, "query") or {}, _json_arg(a.update, "update"))
    out.write(f"{n}\n")
    return 0


def cmd_delete(db: NexaDB, a, out) -> int:
    c = db.collection(a.collection)
    if a.id is not None:
        ok = c.delete(a.id)
        out.write("deleted\n" if ok else "not found\n")
        return 0 if ok else 1
    if a.query is None and not a.all:
        raise UsageError("delete: give an id, --query, or --all")
    out.write(f"{c.delete_many(_json_arg(a.query, 'query'))}\n")
    return 0


def cmd_search(db: NexaDB, a, out) -> int:
    vec = _json_arg(a.vector, "vector", list)
    vc = db.vector_collection(a.collection)
    kw = dict(limit=a.limit, filter=_json_arg(a.filter, "filter"), ef=a.ef, exact=a.exact)
    if a.explain:
        r = vc.explain(vec, **kw)
        _dump({"plan": r["plan"]}, out)
        hits = r["results"]
    else:
        hits = vc.search(vec, **kw)
    for doc_id, similarity, doc in hits:
        _dump({"document_id": doc_id, "similarity": similarity, "document": doc}, out)
    return 0


def _index_line(info: dict) -> dict:
    ix = info["index"]
    line = {"collection": info["name"], "index": ix["kind"], "rows": info["count"]}
    if ix["kind"] == "hnsw":
        line.update(m=ix["m"], ef_construction=ix["ef_construction"], quantization=ix["quantization"],
                    indexed=info["indexed"], building=info["index_building"], index_bytes=info["index_bytes"])
        if ix["quantization"] != "none":
            line["oversample"] = ix["oversample"]
    return line


def cmd_index(db: NexaDB, a, out) -> int:
    """Shows a vector collection's index and its graph's progress; with --hnsw or --exact
    changes it first; with --wait follows the build (a progress bar on stderr) until done."""
    vc = db.vector_collection(a.collection)
    if a.hnsw or a.exact:
        info = vc.set_index("hnsw" if a.hnsw else "exact", m=a.m, ef_construction=a.ef_construction,
                            quantization=a.quantization or "none", oversample=a.oversample)
    else:
        if a.m or a.ef_construction or a.quantization or a.oversample:
            raise UsageError("index: --m, --ef-construction, --quantization and --oversample go with --hnsw")
        info = vc.info()
    if a.wait and info["index"]["kind"] == "hnsw":
        prog = Progress(f"index {a.collection}", info["count"], _progress_on(a), unit="rows")
        while info["index_building"]:
            time.sleep(0.5)
            info = vc.info()
            prog.total = info["count"]
            prog.update(info["indexed"] - prog.n)
        prog.finish()
    _dump(_index_line(info), out)
    return 0


def _vector_collection_for_import(db: NexaDB, a, first: Optional[dict]):
    """The vector collection to import into: an existing one (checked against
    --dimensions and --metric when given), or a new one with --dimensions (else the
    length of the first document's vector) and --metric (else cosine)."""
    info = {c["name"]: c for c in db.list_vector_collections()}.get(a.collection)
    if info is not None:
        if a.dimensions is not None and a.dimensions != info["dimensions"]:
            raise UsageError(f"vector collection {a.collection} has {info['dimensions']} dimensions, "
                             f"not {a.dimensions}")
        if a.metric is not None and a.metric != info["metric"]:
            raise UsageError(f"vector collection {a.collection} ranks by {info['metric']}, not {a.metric}")
        return db.vector_collection(a.collection)
    dims = a.dimensions
    if dims is None:
        vec = first.get(a.vector_field) if first is not None else None
        if not isinstance(vec, list) or not vec:
            raise UsageError(f"{a.file}: cannot infer --dimensions: the first document has no "
                             f"'{a.vector_field}' array")
        dims = len(vec)
    return db.vector_collection(a.collection, dimensions=dims, metric=a.metric or "cosine")


def cmd_import(db: NexaDB, a, out) -> int:
    if a.batch < 1:
        raise UsageError("--batch must be at least 1")
    if a.vector_field is None and (a.dimensions is not None or a.metric is not None):
        raise UsageError("--dimensions and --metric need --vector-field")
    total = _count_lines(a.file) if a.progress != "never" else None
    prog = Progress(f"import {a.collection}", total, _progress_on(a))
    f = sys.stdin if a.file == "-" else open(a.file, encoding="utf-8")
    n = 0
    try:
        batches = _batches(_read_jsonl(f, a.file), a.batch)
        if a.vector_field:
            vc = None
            for batch in batches:
                if vc is None:
                    vc = _vector_collection_for_import(db, a, batch[0])
                vecs = []
                for d in batch:
                    if a.vector_field not in d:
                        raise UsageError(f"{a.file}: a document has no '{a.vector_field}' field")
                    vecs.append(d.pop(a.vector_field))
                vc.insert_many(batch, vecs)
                n += len(batch)
                prog.update(len(batch))
            if vc is None:  # an empty file still leaves the collection there, as for documents
                _vector_collection_for_import(db, a, None)
        else:
            c = db.collection(a.collection)
            for batch in batches:
                c.insert_many(batch)
                n += len(batch)
                prog.update(len(batch))
    finally:
        prog.finish()
        if f is not sys.stdin:
            f.close()
    print(f"imported {n} documents into {a.collection}", file=sys.stderr)
    return 0


def _export_source(db: NexaDB, a):
    """What to export: ('documents', None) or ('vectors', info of the vector collection).
    A vector collection is exported with its vectors; when a document collection and a
    vector collection share the name, the user says which."""
    vinfo = {c["name"]: c for c in db.list_vector_collections()}.get(a.collection)
    if a.documents:
        return "documents", None
    if a.vector_field is not None:
        if vinfo is None:
            raise UsageError(f"there is no vector collection {a.collection} (--vector-field exports one)")
        return "vectors", vinfo
    if vinfo is None:
        return "documents", None
    if a.collection in {c["name"] for c in db.list_collections()}:
        raise UsageError(f"{a.collection} is both a document collection and a vector collection: "
                         f"pass --documents for the documents, or --vector-field FIELD for the vector "
                         f"collection (each document gets its vector under FIELD)")
    return "vectors", vinfo


def cmd_export(db: NexaDB, a, out) -> int:
    kind, vinfo = _export_source(db, a)
    query = _json_arg(a.query, "query")
    if kind == "vectors":
        field = a.vector_field or "vector"
        total = vinfo["count"] if query is None else None
        rows: Iterable[dict] = _with_vectors(
            db.vector_collection(a.collection).find(query, page_size=a.batch), field)
    else:
        c = db.collection(a.collection)
        total = c.count(query) if a.progress != "never" else None
        rows = c.find_iter(query, page_size=a.batch)
    prog = Progress(f"export {a.collection}", total, _progress_on(a))
    f = out if a.file in (None, "-") else open(a.file, "w", encoding="utf-8")
    n = 0
    try:
        for d in rows:
            f.write(_dumps(d) + "\n")
            n += 1
            prog.update(1)
    finally:
        prog.finish()
        if f is not out:
            f.close()
    what = f" with their vectors in '{a.vector_field or 'vector'}'" if kind == "vectors" else ""
    print(f"exported {n} documents{what} from {a.collection}", file=sys.stderr)
    return 0


def _with_vectors(cursor, field: str) -> Iterator[dict]:
    """Each document of a vector collection with its vector under field (which the
    document itself must not use: it would be lost on the way back in)."""
    for doc, vector in cursor:
        if field in doc:
            raise UsageError(f"document {doc.get('_id')!r} has a field '{field}' of its own; "
                             f"choose another --vector-field")
        doc[field] = vector
        yield doc


def _listing_of(archive_path: str) -> bytes:
    """The BACKUP listing of an archive the server streamed (its last entry)."""
    import tarfile
    try:
        with tarfile.open(archive_path, "r:") as t:
            f = t.extractfile("BACKUP")
            if f is None:
                raise KeyError("BACKUP")
            return f.read()
    except (OSError, KeyError, tarfile.TarError) as e:
        raise UsageError(f"--previous-archive {archive_path}: not a complete backup archive ({e})") from None


def cmd_backup(db: NexaDB, a, out) -> int:
    if (a.name is None) == (a.archive is None):
        raise UsageError("give a NAME (a directory backup on the server) or --archive FILE")
    if a.archive is not None and a.previous is not None:
        raise UsageError("--previous names a directory backup; an archive takes --previous-archive")
    if a.archive is None and a.previous_archive is not None:
        raise UsageError("--previous-archive is for --archive")
    prog = Progress(f"backup {a.name or a.archive}", None, _progress_on(a), unit="bytes")

    def tell(p):
        prog.total = p.get("bytes_total") or None
        prog.update(p.get("bytes_done", 0) - prog.n)

    try:
        if a.archive is None:
            res = db.backup(a.name, previous=a.previous, progress=tell, timeout=None)
        else:
            listing = _listing_of(a.previous_archive) if a.previous_archive else None
            partial = a.archive + ".partial"  # renamed once the server says the backup is complete
            try:
                with open(partial, "wb") as f:
                    res = db.backup(archive=f, previous_listing=listing, progress=tell, timeout=None)
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException:
                os.unlink(partial)
                raise
            os.replace(partial, a.archive)
            res["path"] = a.archive
    finally:
        prog.finish()
    _dump({"sequence": res["sequence"], "path": res["path"], **res["progress"]}, out)
    return 0


def _progress_on(a) -> bool:
    return a.progress == "always" or (a.progress == "auto" and sys.stderr.isatty())


def cmd_shell(db: NexaDB, a, out) -> int:
    Shell(db, out).cmdloop()
    return 0


# -- interactive shell -------------------------------------------------------------------

class Shell(cmd.Cmd):
    """nexadb interactive shell. `use NAME` picks a collection; `help` lists commands."""

    def __init__(self, db: NexaDB, out: TextIO):
        interactive = sys.stdin.isatty()
        super().__init__(stdout=out)
        self.use_rawinput = interactive
        self.db = db
        self.coll: Optional[str] = None
        self.intro = (f"nexadb shell on {db.host}:{db.port}. Type help, or exit to leave."
                      if interactive else None)
        self._set_prompt(interactive)
        self.interactive = interactive

    def _set_prompt(self, interactive: bool = True) -> None:
        self.prompt = f"nexadb:{self.coll or '-'}> " if interactive else ""

    def _coll(self):
        if not self.coll:
            raise UsageError("no collection: `use NAME` first")
        return self.db.collection(self.coll)

    def onecmd(self, line: str) -> bool:
        try:
            return super().onecmd(line)
        except (UsageError, errors.NexaDBError, ValueError, TypeError) as e:
            self.stdout.write(f"error: {e}\n")
            return False

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> bool:
        self.stdout.write(f"error: unknown command {line.split()[0]!r} (try help)\n")
        return False

    def do_use(self, arg: str) -> None:
        """use NAME — make NAME the current collection."""
        if not arg.strip():
            raise UsageError("use NAME")
        self.coll = arg.strip()
        self._set_prompt(self.interactive)

    def do_collections(self, arg: str) -> None:
        """collections — list collections with counts."""
        for c in self.db.list_collections() + self.db.list_vector_collections():
            _dump(c, self.stdout)

    def do_insert(self, arg: str) -> None:
        """insert {JSON} — insert a document; prints its id."""
        self.stdout.write(self._coll().insert(_json_arg(arg, "document")) + "\n")

    def do_find(self, arg: str) -> None:
        """find [{QUERY}] [LIMIT] — matching documents (default limit 20)."""
        query, limit = _split_json_and_int(arg, 20)
        for d in self._coll().find(query, limit=limit):
            _dump(d, self.stdout)

    def do_get(self, arg: str) -> None:
        """get ID — one document by id."""
        d = self._coll().find_by_id(arg.strip())
        self.stdout.write("not found\n" if d is None else _dumps(d) + "\n")

    def do_count(self, arg: str) -> None:
        """count [{QUERY}] — number of matching documents."""
        self.stdout.write(f"{self._coll().count(_json_arg(arg.strip() or None, 'query'))}\n")

    def do_update(self, arg: str) -> None:
        """update ID {FIELDS} — merge fields into a document."""
        parts = arg.strip().split(None, 1)
        if len(parts) != 2:
            raise UsageError("update ID {FIELDS}")
        ok = self._coll().update(parts[0], _json_arg(parts[1], "fields"))
        self.stdout.write("updated\n" if ok else "not found\n")

    def do_delete(self, arg: str) -> None:
        """delete ID — delete one document."""
        ok = self._coll().delete(arg.strip())
        self.stdout.write("deleted\n" if ok else "not found\n")

    def do_aggregate(self, arg: str) -> None:
        """aggregate [STAGES] — run a pipeline (a JSON array)."""
        for d in self._coll().aggregate_iter(_json_arg(arg, "pipeline", list)):
            _dump(d, self.stdout)

    def do_search(self, arg: str) -> None:
        """search [VECTOR] [LIMIT] — nearest documents in the current vector collection."""
        text, limit = arg.strip(), 10
        if not text.endswith("]"):
            text, _, lim = text.rpartition(" ")
            limit = int(lim)
        vc = self.db.vector_collection(self._coll().name)
        for doc_id, sim, doc in vc.search(_json_arg(text, "vector", list), limit=limit):
            _dump({"document_id": doc_id, "similarity": sim, "document": doc}, self.stdout)

    def do_exit(self, arg: str) -> bool:
        """exit — leave the shell (also quit, or Ctrl-D)."""
        return True

    do_quit = do_exit

    def do_EOF(self, arg: str) -> bool:
        if self.interactive:
            self.stdout.write("\n")
        return True


def _split_json_and_int(arg: str, default: int):
    text = arg.strip()
    if not text:
        return None, default
    if text.endswith("}"):
        return _json_arg(text, "query"), default
    head, _, tail = text.rpartition(" ")
    try:
        n = int(tail)
    except ValueError:
        raise UsageError("expected {QUERY} [LIMIT]") from None
    return _json_arg(head or None, "query"), n


# -- argument parsing ----------------------------------------------------------------------

def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _read(path: Optional[str]) -> Optional[bytes]:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nexadb", description="NexaDB command-line client (gRPC).",
        epilog="The API key defaults to $NEXADB_API_KEY. Port 6970 is the server's gRPC port "
               "(6969 is its HTTP/JSON port).")
    p.add_argument("--host", default=os.environ.get("NEXADB_HOST", "localhost"),
                   help="server host (default $NEXADB_HOST or localhost)")
    p.add_argument("--port", type=int, default=int(os.environ.get("NEXADB_PORT", DEFAULT_PORT)),
                   help=f"server gRPC port (default $NEXADB_PORT or {DEFAULT_PORT})")
    p.add_argument("--api-key", default=None, help="API key (default $NEXADB_API_KEY)")
    p.add_argument("--tls", action="store_true", default=_env_bool("NEXADB_TLS"),
                   help="connect with TLS, trusting the system's CA roots (default $NEXADB_TLS)")
    p.add_argument("--ca-file", default=os.environ.get("NEXADB_TLS_CA") or None,
                   help="PEM file of CA certificates for TLS (default $NEXADB_TLS_CA; implies --tls)")
    p.add_argument("--cert-file", default=os.environ.get("NEXADB_TLS_CLIENT_CERT") or None,
                   help="PEM client certificate chain for servers that require one (mTLS; "
                        "default $NEXADB_TLS_CLIENT_CERT; implies --tls)")
    p.add_argument("--key-file", default=os.environ.get("NEXADB_TLS_CLIENT_KEY") or None,
                   help="PEM private key of --cert-file (default $NEXADB_TLS_CLIENT_KEY)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, fn, help):
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(fn=fn)
        return sp

    add("status", cmd_status, "server status and version (needs no key)")
    add("stats", cmd_stats, "database statistics")
    add("collections", cmd_collections, "list collections, one JSON line each")

    sp = add("insert", cmd_insert, "insert a document (or a JSON array of them); prints ids")
    sp.add_argument("collection")
    sp.add_argument("document", nargs="?", help="JSON document; read from stdin when absent")

    sp = add("find", cmd_find, "find documents; prints JSON lines")
    sp.add_argument("collection")
    sp.add_argument("query", nargs="?", help='filter, e.g. \'{"age": {"$gt": 25}}\'')
    sp.add_argument("--limit", type=int, default=0, help="at most N documents (0: all)")
    sp.add_argument("--skip", type=int, default=0)
    sp.add_argument("--sort", help="fields, '-' for descending: e.g. --sort=-age,name")
    sp.add_argument("--projection", help='e.g. \'{"name": 1}\'')
    sp.add_argument("--pretty", action="store_true", help="indented JSON")

    sp = add("count", cmd_count, "count documents matching a filter")
    sp.add_argument("collection")
    sp.add_argument("query", nargs="?")

    sp = add("aggregate", cmd_aggregate, "run an aggregation pipeline; prints JSON lines")
    sp.add_argument("collection")
    sp.add_argument("pipeline", help='JSON array of stages, e.g. \'[{"$group": {...}}]\'')
    sp.add_argument("--pretty", action="store_true")

    sp = add("update", cmd_update, "update one document by --id, or every match of --query")
    sp.add_argument("collection")
    sp.add_argument("update", help="fields to merge, or update operators")
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--id")
    g.add_argument("--query")

    sp = add("delete", cmd_delete, "delete one document by id, or every match of --query")
    sp.add_argument("collection")
    sp.add_argument("id", nargs="?")
    sp.add_argument("--query")
    sp.add_argument("--all", action="store_true", help="delete every document")

    sp = add("search", cmd_search, "vector similarity search; prints JSON lines")
    sp.add_argument("collection")
    sp.add_argument("vector", help="JSON array of numbers")
    sp.add_argument("--limit", type=int, default=10)
    sp.add_argument("--filter", help="only documents matching this filter")
    sp.add_argument("--ef", type=int, help="HNSW: candidates kept while searching the graph "
                    "(higher: better recall, slower; default the server's 128)")
    sp.add_argument("--exact", action="store_true", help="score every vector even where a graph exists")
    sp.add_argument("--explain", action="store_true", help="first print how the search ran ({\"plan\": ...})")

    sp = add("index", cmd_index, "show a vector collection's index and its build progress, or change it")
    sp.add_argument("collection")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--hnsw", action="store_true", help="build an HNSW graph (in the background)")
    g.add_argument("--exact", action="store_true", help="drop the graph: every search scores every vector")
    sp.add_argument("--m", type=int, default=0, help="with --hnsw: links per node, 2..64 (default 16)")
    sp.add_argument("--ef-construction", type=int, default=0,
                    help="with --hnsw: candidates while linking, m..10000 (default 200)")
    sp.add_argument("--quantization", choices=("none", "int8", "float16"),
                    help="with --hnsw: int8 keeps the graph's vectors as int8 codes (a quarter of the "
                         "bytes), float16 as half floats (half the bytes); hits are rescored with the "
                         "float32 vectors")
    sp.add_argument("--oversample", type=int, default=0,
                    help="with --quantization int8 or float16: hits rescored per hit wanted, 1..100 "
                         "(default 4)")
    sp.add_argument("--wait", action="store_true", help="follow the build until it is done")
    sp.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                    help="with --wait: progress bar on stderr (auto: when it is a terminal)")

    sp = add("import", cmd_import, "import JSON lines into a collection, with a progress bar")
    sp.add_argument("collection")
    sp.add_argument("file", help="JSON lines file, or - for stdin")
    sp.add_argument("--batch", type=int, default=1000, help="documents per insert (default 1000)")
    sp.add_argument("--vector-field", help="import into a vector collection, taking each "
                    "document's vector from this field")
    sp.add_argument("--dimensions", type=int, help="with --vector-field: create the collection "
                    "with these dimensions if absent (default: the first vector's length)")
    sp.add_argument("--metric", choices=("cosine", "dot", "l2"),
                    help="with --vector-field: the metric of a collection created (default cosine)")
    sp.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                    help="progress bar on stderr (auto: when it is a terminal)")

    sp = add("export", cmd_export, "export a collection as JSON lines, with a progress bar; a "
             "vector collection's documents carry their vectors")
    sp.add_argument("collection")
    sp.add_argument("file", nargs="?", help="output file (default stdout)")
    sp.add_argument("--query", help="only matching documents")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--vector-field", help="export the vector collection, each document with its "
                   "vector under this field (default 'vector'; import --vector-field reads it back)")
    g.add_argument("--documents", action="store_true",
                   help="export the document collection when a vector collection has the same name")
    sp.add_argument("--batch", type=int, default=1000, help="documents per streamed page")
    sp.add_argument("--progress", choices=("auto", "always", "never"), default="auto")

    sp = add("backup", cmd_backup, "a consistent backup of the whole database while writes go on: "
             "a directory NAME under the server's --backup-dir, or --archive FILE streamed here (tar); "
             "`nexadb-server --restore` restores either")
    sp.add_argument("name", nargs="?", help="the backup's directory name on the server")
    sp.add_argument("--previous", help="incremental: the name of an earlier directory backup whose "
                    "tables are linked instead of read again")
    sp.add_argument("--archive", help="write a tar archive here (FILE.partial until it is complete)")
    sp.add_argument("--previous-archive", help="with --archive, incremental: an earlier archive "
                    "whose tables are left out (restore with `--restore FILE,PREVIOUS`)")
    sp.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                    help="progress bar on stderr (auto: when it is a terminal)")

    add("shell", cmd_shell, "interactive shell (use, find, insert, count, aggregate, search...)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        with NexaDB(a.host, a.port, api_key=a.api_key, tls=a.tls, root_certificates=_read(a.ca_file),
                    client_cert=_read(a.cert_file), client_key=_read(a.key_file),
                    timeout=a.timeout) as db:
            return a.fn(db, a, sys.stdout)
    except UsageError as e:
        print(f"nexadb {a.command}: {e}", file=sys.stderr)
        return 2
    except errors.NexaDBError as e:
        print(f"nexadb {a.command}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except (ValueError, TypeError, OSError) as e:
        print(f"nexadb {a.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
