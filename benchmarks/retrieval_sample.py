"""A retrieval sample built from this Python's standard library: each documented function or
class gives a query (its docstring's first line) and a document (the rest of the docstring)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

MODULES = [
    "abc",
    "argparse",
    "array",
    "ast",
    "asyncio",
    "base64",
    "binascii",
    "bisect",
    "bz2",
    "calendar",
    "cmath",
    "codecs",
    "collections",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "dis",
    "email.message",
    "email.utils",
    "enum",
    "filecmp",
    "fnmatch",
    "fractions",
    "ftplib",
    "functools",
    "gc",
    "getopt",
    "gettext",
    "glob",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "html.parser",
    "http.client",
    "http.cookies",
    "http.server",
    "imaplib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "locale",
    "logging",
    "lzma",
    "mailbox",
    "math",
    "mimetypes",
    "multiprocessing.pool",
    "numbers",
    "operator",
    "optparse",
    "os",
    "os.path",
    "pathlib",
    "pickle",
    "pkgutil",
    "platform",
    "plistlib",
    "poplib",
    "pprint",
    "queue",
    "random",
    "re",
    "reprlib",
    "sched",
    "secrets",
    "selectors",
    "shelve",
    "shlex",
    "shutil",
    "signal",
    "smtplib",
    "socket",
    "socketserver",
    "sqlite3",
    "ssl",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "sysconfig",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "time",
    "timeit",
    "tokenize",
    "traceback",
    "types",
    "typing",
    "unittest",
    "unittest.mock",
    "urllib.parse",
    "urllib.request",
    "uuid",
    "warnings",
    "wave",
    "weakref",
    "xml.dom.minidom",
    "xml.etree.ElementTree",
    "zipfile",
    "zlib",
]


def _documented(module: Any) -> list[Any]:
    """The module's public functions and classes, and the public members of its classes."""
    found = []
    for name, value in sorted(vars(module).items()):
        if name.startswith("_"):
            continue
        found.append(value)
        if inspect.isclass(value) and value.__module__ == module.__name__:
            found += [v for n, v in sorted(vars(value).items()) if not n.startswith("_")]
    return [v for v in found if inspect.isroutine(v) or inspect.isclass(v)]


def docstring_pairs(limit: int) -> list[tuple[str, str]]:
    """Up to `limit` (query, document) pairs, in a fixed order, queries unique."""
    pairs: dict[str, str] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for value in _documented(module):
            doc = inspect.getdoc(value) or ""
            head, _, body = doc.strip().partition("\n")
            body = " ".join(body.split())
            if len(head) >= 20 and len(body) >= 80 and head not in pairs:
                pairs[head] = body
    return sorted(pairs.items())[:limit]
