"""Every hostile input through the whole pipeline, one at a time, measured: the table in
docs/security.md.

    python bench/hostile_table.py [--doctypes 600] [--slow-headers 12] [--seed 1] FOLDER...

Each file under each FOLDER (its family: the folder's name, and the first level below it when
there is one) is parsed, normalised and ingested into one temporary SQLite store, in process:
wall time and peak traced memory (tracemalloc) are taken per input. Generated families join
them: DOCTYPE/entity variants (internal subsets of every shape, broken on purpose half the time,
nested entities up to 8 deep), servers on 127.0.0.1 that send their headers one line at a time
(each fetch must fail within its deadline + 1 s), and SSRF forms (each must be refused before a
byte is sent). Then every output (HTML pages, Atom, RSS, JSON Feed, OPML, JSON API) is rendered
and scanned for active content. Prints the Markdown table; exits 0 when no input took over 10 s
or 200 MB, nothing failed unexpectedly and no output holds active content.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import re
import resource
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aggregator import create_app  # noqa: E402
from aggregator.config import config_from_text  # noqa: E402
from aggregator.errors import FetchError, ParseError  # noqa: E402
from aggregator.ingest.fetch import fetch  # noqa: E402
from aggregator.ingest.normalize import normalize_entry  # noqa: E402
from aggregator.ingest.parse import parse_feed  # noqa: E402
from aggregator.ingest.pipeline import store_batch  # noqa: E402
from aggregator.store.repository import Store  # noqa: E402
from aggregator.types import FetchDone, FetchSettings  # noqa: E402

MAX_SECONDS, MAX_BYTES = 10.0, 200 << 20
NOW = datetime(2026, 12, 3, tzinfo=UTC)
ACTIVE = re.compile(
    r"<script|<iframe[\s>/]|<object[\s>/]|<embed[\s>/]|<base[\s>/]|<meta[^>]*refresh|"
    r"<[a-z][^>]*\son[a-z]+\s*=|(?:java|vb)script\s*:|expression\s*\(",
    re.IGNORECASE,
)


@dataclass
class Family:
    inputs: int = 0
    stored: int = 0  # inputs whose entries were stored (some entries at least)
    refused: int = 0  # a clear ParseError / FetchError, as the source's error
    failed: list[str] = field(default_factory=list)  # anything else: a bug
    seconds: float = 0.0  # the slowest input
    peak: int = 0  # the most Python memory one input took (tracemalloc; the parsers' C memory is not in it)
    jump: int = 0  # the most one input raised the process's peak resident memory (C included)
    slowest: str = ""


def through_pipeline(store: Store, source: str, body: bytes) -> tuple[bool, str | None]:
    """(stored anything, error) for one body, as the pipeline would take it."""
    try:
        feed = parse_feed(body)
    except ParseError as exc:
        return False, str(exc)
    batch = [normalize_entry(e, source=source, authority=feed.authority, now=NOW) for e in feed.entries]
    store_batch(store, source, batch, FetchDone(None, None, None, NOW), now=NOW)
    return bool(batch), None


def measured(family: Family, label: str, run: Callable[[], tuple[bool, str | None]]) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    began = time.perf_counter()
    try:
        stored, error = run()
        if error is not None:
            family.refused += 1
        elif stored:
            family.stored += 1
    except Exception as exc:  # a bug: reported, never hidden
        family.failed.append(f"{label}: {type(exc).__name__}: {exc}"[:300])
    finally:
        seconds = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    family.inputs += 1
    if seconds > family.seconds:
        family.seconds, family.slowest = seconds, label
    family.peak = max(family.peak, peak)
    family.jump = max(family.jump, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)


def family_of(root: Path, path: Path) -> str:
    parts = path.relative_to(root).parts
    return f"{root.name}/{parts[0]}" if len(parts) >= 2 else root.name


def doctype_variant(rng: random.Random) -> bytes:
    """An internal subset of random shape, and a feed that references its deepest entity."""
    tricky = ["]>", ">", "]", "[", "<!--", "-->", "?>", "<?", "%", "x" * 40, "<b>", "&#60;", " ", "'", '"']
    parts, previous = [], None
    for level in range(rng.randint(1, 8)):
        quote = rng.choice(['"', "'"])
        value = "".join(rng.choice(tricky) for _ in range(rng.randint(0, 6))).replace(quote, "")
        if previous:
            value += f"&{previous};" * rng.randint(2, 10)
        name = f"e{level}"
        parts.append(f"<!ENTITY {name} {quote}{value}{quote}>")
        extra = rng.choice(["", "comment", "pi", "param", "system", "external"])
        if extra == "comment":
            parts.append("<!-- ]> -->")
        elif extra == "pi":
            parts.append("<?pi ]> ?>")
        elif extra == "param":
            parts.append(f"<!ENTITY % p{level} {quote}x{quote}>%p{level};")
        elif extra == "system":
            parts.append(f'<!ENTITY s{level} SYSTEM "file:///etc/passwd">')
        elif extra == "external":
            parts.append(f'<!ENTITY x{level} SYSTEM "http://127.0.0.1:9/x">')
        previous = name
    subset = "".join(parts)
    if rng.random() < 0.5 and subset:
        cut = rng.randrange(len(subset))
        subset = subset[:cut] + subset[cut + 1 :]
    head = rng.choice(["", ' SYSTEM "a>b]"', " PUBLIC '-//X//]>' 'y>z'"])
    ref = f"&{previous};"
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss{head} [{subset}]><rss version="2.0"><channel><title>T</title>'
        f"<item><title>{ref}</title><description>{ref}{ref}</description><guid>u:{rng.random()}</guid>"
        "</item></channel></rss>"
    ).encode()


def slow_header_server(gap: float) -> tuple[str, threading.Event]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def dribble() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not stop.is_set():
                    try:
                        conn.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        return
                    time.sleep(gap)

    threading.Thread(target=dribble, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/feed", stop


SSRF = [
    "http://127.0.0.1/", "http://127.1/", "http://0x7f000001/", "http://2130706433/", "http://0177.0.0.1/",
    "http://localhost/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
    "http://0.0.0.0/", "http://[::]/", "http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://[fc00::1]/", "http://[fd00::1]/",
    "http://100.64.0.1/", "http://224.0.0.1/", "http://240.0.0.1/", "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::]/", "http://[64:ff9b::7f00:1]/", "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "http://[fec0::1]/", "http://[::127.0.0.1]/",
    "http://[64:ff9b:1::1]/", "http://198.18.0.1/", "http://192.0.0.1/", "http://[ff02::1]/",
    "http://0/", "http://[::ffff:169.254.169.254]/", "gopher://127.0.0.1:25/", "ftp://127.0.0.1/",
    "dict://127.0.0.1:11211/",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--doctypes", type=int, default=600)
    parser.add_argument("--slow-headers", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    families: dict[str, Family] = defaultdict(Family)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'hostile.db'}"
        store = Store.open(url)
        names: dict[str, str] = {}
        for root in args.folders:
            for path in sorted(
                p for p in root.rglob("*") if p.is_file() and not p.name.startswith("LICENSE")
            ):
                name = family_of(root, path)
                source = names.setdefault(name, re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))
                store.sync_sources([(source, f"file:{name}")])
                body = path.read_bytes()
                measured(families[name], str(path), partial(through_pipeline, store, source, body))
        rng = random.Random(args.seed)
        store.sync_sources([("generated-doctype", "file:generated")])
        for n in range(args.doctypes):
            body = doctype_variant(rng)
            measured(
                families["generated DOCTYPE/entity variants"],
                f"variant {n}",
                partial(through_pipeline, store, "generated-doctype", body),
            )
        for n in range(args.slow_headers):
            gap = 0.05 + 0.1 * n
            target, stop = slow_header_server(gap)
            settings = FetchSettings(timeout=2.0, allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))

            def slow(target: str = target, settings: FetchSettings = settings) -> tuple[bool, str | None]:
                began = time.monotonic()
                try:
                    fetch(target, settings=settings)
                except FetchError as exc:
                    if time.monotonic() - began > settings.timeout + 1:
                        raise AssertionError(f"failed after {time.monotonic() - began:.1f} s") from exc
                    return False, str(exc)
                raise AssertionError("a server sending headers forever was fetched")

            measured(families["slow headers (deadline 2 s)"], f"one header per {gap:.2f} s", slow)
            stop.set()
        for target in SSRF:

            def refused(target: str = target) -> tuple[bool, str | None]:
                try:
                    fetch(target, settings=FetchSettings(timeout=2.0))
                except FetchError as exc:
                    return False, str(exc)
                raise AssertionError(f"{target} was fetched")

            measured(families["SSRF forms"], target, refused)
        config = config_from_text(
            f"database: {url}\nsources:\n"
            + "".join(f"  - {{name: {s}, url: 'file:x'}}\n" for s in names.values())
            + "topics: [{slug: all-text, query: 'a* OR e* OR the'}]\n",
            base_dir=Path(tmp),
            env={},
        )
        client = create_app(config, store=store).test_client()
        active = []
        for path in ("/", "/topics/all-text", "/search?q=script", "/feeds/all.atom?limit=500",
                     "/feeds/all.rss?limit=500", "/feeds/all.json?limit=500", "/feeds.opml",
                     "/api/papers?limit=500"):  # fmt: skip
            offset = 0
            while True:
                page = path + (f"&offset={offset}" if "limit=" in path else "")
                body = client.get(page).get_data(as_text=True)
                for hit in ACTIVE.finditer(body):
                    active.append(f"{path}: {body[max(0, hit.start() - 60) : hit.end() + 60]!r}")
                if "limit=" not in path or offset >= 5_000 or body.count("<entry") + body.count("<item") == 0:
                    break
                offset += 500
        papers = store.paper_count()
        store.close()
    print(
        "| input family | inputs | stored | refused, a clear error | failed | slowest | peak Python memory "
        "| most it raised the process peak |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ok = not active
    for name, f in sorted(families.items()):
        over = f.seconds > MAX_SECONDS or f.peak > MAX_BYTES or f.jump > MAX_BYTES
        ok = ok and not over and not f.failed
        print(
            f"| {name} | {f.inputs:,} | {f.stored:,} | {f.refused:,} | {len(f.failed)} | {f.seconds:.2f} s "
            f"| {f.peak / 1e6:.1f} MB | {f.jump / 1e6:.1f} MB |"
        )
    total = sum(f.inputs for f in families.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        f"\n{total:,} inputs; {papers:,} papers stored; active content in outputs: {len(active)}; "
        f"peak resident memory of the whole run {rss / 1e6:.0f} MB (interpreter, app, store and every input)"
    )
    for name, f in families.items():
        for line in f.failed[:10]:
            print(f"FAILED {name}: {line}")
    for line in active[:20]:
        print(f"ACTIVE {line}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
