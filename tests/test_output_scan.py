"""Script payloads in every field a source can send, then every output scanned for active content.

Each source format the product reads (arXiv API Atom, the rss.arxiv.org listing, Hugging Face Daily
Papers, JSON Feed, RSS, Atom) carries the payloads below in every field it has: titles, names,
abstracts, categories, links, ids, comments, journal references, feed titles. Every output a
reader or a tool receives (HTML pages, Atom, RSS, JSON Feed, OPML, the JSON API) is then decoded
the way its consumer decodes it (XML and JSON unescaped, HTML parsed) and every string in it is
scanned as HTML: no script-capable element, no event handler, no script URL anywhere.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html import escape
from html.parser import HTMLParser

import pytest

from aggregator import create_app
from aggregator.ingest.pipeline import Pipeline
from aggregator.runtime import open_store
from tests.conftest import make_config, shared_database_url

PAYLOADS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "<svg/onload=alert(3)>",
    '<a href="javascript:alert(4)">click</a>',
    "<iframe src=//evil.example/></iframe>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(5)>",
    '"><script>alert(6)</script>',
    "<x-widget onclick=alert(7)>custom</x-widget>",
    "<base href=//evil.example/><meta http-equiv=refresh content='0;url=javascript:alert(8)'>",
    "&lt;script&gt;alert(9)&lt;/script&gt;",
    "<object data=javascript:alert(10)></object><embed src=javascript:alert(11)>",
    '<div style="background:url(javascript:alert(12));width:expression(alert(13))">x</div>',
    "<form action=javascript:alert(14)><button formaction=javascript:alert(15)>go</button></form>",
)
ALL = " ".join(PAYLOADS)
URLS = (
    "javascript:alert(21)",
    " JaVaScRiPt:alert(22)",
    "java\tscript:alert(23)",
    "vbscript:msgbox(24)",
    "data:text/html,<script>alert(25)</script>",
)

# --- the scanner -------------------------------------------------------------------------------

SCRIPT_ELEMENTS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "svg", "math",
    "template", "portal", "noscript", "style", "xml", "import",
}  # fmt: skip
URL_ATTRIBUTES = {
    "href", "src", "action", "formaction", "poster", "background", "cite", "data", "xlink:href",
    "srcset", "ping", "longdesc", "manifest", "codebase", "dynsrc", "lowsrc",
}  # fmt: skip
SCRIPT_SCHEME = re.compile(r"^(?:javascript|vbscript|livescript|data|jar|mocha):", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x20\x7f]+")
STYLE_ACTIVE = re.compile(
    r"expression\s*\(|url\s*\(\s*['\"]?\s*(?:java|vb)script|@import|behaviou?r\s*:", re.I
)


def script_url(value: str) -> bool:
    """Whether a browser would treat `value`, in a URL position, as something to run or open locally."""
    return bool(SCRIPT_SCHEME.match(CONTROL.sub("", value)))


class ActiveContent(HTMLParser):
    """Everything in an HTML text a browser could run: elements, handlers, script URLs, CSS."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SCRIPT_ELEMENTS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            elif name in URL_ATTRIBUTES and script_url(value):
                self.found.append(f"<{tag} {name}={value!r}>")
            elif name == "style" and STYLE_ACTIVE.search(value):
                self.found.append(f"<{tag} style={value!r}>")
            elif tag == "meta" and name == "http-equiv" and value.lower() == "refresh":
                self.found.append("<meta http-equiv=refresh>")

    handle_startendtag = handle_starttag


def active_in_html(text: str) -> list[str]:
    scanner = ActiveContent()
    scanner.feed(text)
    scanner.close()
    return scanner.found


def active_in_string(value: str, *, url_position: bool) -> list[str]:
    """A decoded string from a feed or JSON document, judged as the HTML a reader may render it as."""
    found = active_in_html(value)
    if url_position and script_url(value):
        found.append(f"script URL {value!r}")
    return found


XML_URL_ELEMENTS = {"link", "guid", "id", "comments", "docs", "icon", "logo", "uri", "url"}
XML_URL_ATTRIBUTES = {"href", "url", "xmlUrl", "htmlUrl", "src", "uri", "domain"}
JSON_URL_KEYS = re.compile(r"(?:^|_)(?:url|urls|link|links|href|id|home_page|icon|favicon|image|avatar)$")


def active_in_xml(body: bytes) -> Iterator[str]:
    for element in ET.fromstring(body).iter():
        name = element.tag.rpartition("}")[2]
        if element.text:
            for hit in active_in_string(element.text, url_position=name in XML_URL_ELEMENTS):
                yield f"<{name}>: {hit}"
        for attribute, value in element.attrib.items():
            attribute = attribute.rpartition("}")[2]
            for hit in active_in_string(value, url_position=attribute in XML_URL_ATTRIBUTES):
                yield f"<{name} {attribute}>: {hit}"


def active_in_json(value: object, key: str = "") -> Iterator[str]:
    if isinstance(value, str):
        for hit in active_in_string(value, url_position=bool(JSON_URL_KEYS.search(key))):
            yield f"{key}: {hit}"
    elif isinstance(value, list):
        for item in value:
            yield from active_in_json(item, key)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from active_in_json(k, "")
            yield from active_in_json(v, str(k))


def test_the_scanner_finds_what_it_looks_for() -> None:
    """The scanner itself: every payload and script URL is caught raw, and none once escaped."""
    for payload in PAYLOADS[:9] + PAYLOADS[10:]:
        assert active_in_html(payload), payload
        assert not active_in_html(escape(payload)), payload
    for url in URLS:
        assert active_in_string(url, url_position=True), url
        assert not active_in_string("https://example.org/" + url.partition(",")[0], url_position=True)
    assert not active_in_html('<p>a &lt; b, <a href="https://arxiv.org/abs/2501.00001">x</a></p>')
    assert list(active_in_json({"items": [{"url": "javascript:x"}]}))
    assert list(active_in_xml(b'<feed><link href="javascript:x"/></feed>'))


# --- the sources -------------------------------------------------------------------------------


def x(text: str) -> str:
    """XML character data carrying `text` as the source sent it (markup escaped once)."""
    return escape(text, quote=True)


def arxiv_api(n: int) -> str:
    entries = []
    for i in range(n):
        url = URLS[i % len(URLS)]
        entries.append(f"""<entry>
<id>http://arxiv.org/abs/2501.{10000 + i}v1</id>
<updated>2026-11-0{1 + i % 9}T00:00:00Z</updated><published>2026-11-0{1 + i % 9}T00:00:00Z</published>
<title>Language model pruning {i} {x(PAYLOADS[i % len(PAYLOADS)])}</title>
<summary>{x(ALL)} We prune large language models.</summary>
<author><name>{x(PAYLOADS[(i + 1) % len(PAYLOADS)])} Ada Lovelace</name>
<arxiv:affiliation>{x(ALL)}</arxiv:affiliation></author>
<author><name>Grace {x(PAYLOADS[(i + 2) % len(PAYLOADS)])} Hopper</name></author>
<arxiv:doi>10.1000/{x(PAYLOADS[i % len(PAYLOADS)])}</arxiv:doi>
<link title="doi" href="{x(url)}" rel="related"/>
<arxiv:comment>{x(ALL)} 12 pages</arxiv:comment>
<arxiv:journal_ref>{x(ALL)} Proc. 2026</arxiv:journal_ref>
<link href="{x(url)}" rel="alternate" type="text/html"/>
<link title="pdf" href="{x(url)}" rel="related" type="application/pdf"/>
<arxiv:primary_category term="cs.CL{x(PAYLOADS[i % len(PAYLOADS)])}" scheme="http://arxiv.org/schemas/atom"/>
<category term="{x(PAYLOADS[(i + 3) % len(PAYLOADS)])}" scheme="http://arxiv.org/schemas/atom"/>
</entry>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom"
      xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">
<id>http://arxiv.org/api/{x(PAYLOADS[0])}</id>
<title type="html">{x(ALL)}</title>
<updated>2026-11-01T00:00:00Z</updated>
{"".join(entries)}
</feed>"""


def arxiv_listing(n: int) -> str:
    items = []
    for i in range(n):
        items.append(f"""<item>
<title>Sparse language models {i} {x(PAYLOADS[(i + 4) % len(PAYLOADS)])}</title>
<link>{x(URLS[i % len(URLS)])}</link>
<description>arXiv:2502.{20000 + i}v1 Announce Type: new
Abstract: {x(ALL)} Sparse attention for language models.</description>
<guid isPermaLink="false">oai:arXiv.org:2502.{20000 + i}v1</guid>
<category>{x(PAYLOADS[(i + 5) % len(PAYLOADS)])}</category>
<pubDate>Mon, 02 Nov 2026 00:00:00 -0500</pubDate>
<arxiv:announce_type>new{x(PAYLOADS[i % len(PAYLOADS)])}</arxiv:announce_type>
<dc:rights>{x(ALL)}</dc:rights>
<dc:creator>{x(PAYLOADS[(i + 6) % len(PAYLOADS)])} Alan Turing,
Kurt {x(PAYLOADS[i % len(PAYLOADS)])} Goedel</dc:creator>
</item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">
<channel><title>{x(ALL)}</title><link>http://rss.arxiv.org/rss/cs.CL</link>
<description>{x(ALL)}</description>
{"".join(items)}
</channel></rss>"""


def hugging_face(n: int) -> str:
    items = []
    for i in range(n):
        pid = f"2503.{30000 + i}" if i % 4 else PAYLOADS[i % len(PAYLOADS)]
        items.append(
            {
                "title": ALL,
                "summary": ALL,
                "publishedAt": "2026-11-03T00:00:00.000Z",
                "paper": {
                    "id": pid,
                    "title": f"Diffusion language models {i} {PAYLOADS[(i + 7) % len(PAYLOADS)]}",
                    "summary": f"{ALL} Diffusion for text.",
                    "authors": [{"name": PAYLOADS[(i + 8) % len(PAYLOADS)] + " Emmy Noether"}],
                    "publishedAt": "2026-11-03T00:00:00.000Z",
                    "upvotes": 3,
                    "githubRepo": URLS[i % len(URLS)],
                    "projectPage": URLS[(i + 1) % len(URLS)],
                },
            }
        )
    return json.dumps(items)


def json_feed(n: int) -> str:
    items = []
    for i in range(n):
        items.append(
            {
                "id": URLS[i % len(URLS)] if i % 2 else f"{PAYLOADS[i % len(PAYLOADS)]}-{i}",
                "url": URLS[i % len(URLS)],
                "external_url": URLS[(i + 1) % len(URLS)],
                "title": f"Quantized language models {i} {PAYLOADS[(i + 9) % len(PAYLOADS)]}",
                "content_html": f"{ALL} <p>Quantization.</p>",
                "summary": ALL,
                "image": URLS[i % len(URLS)],
                "banner_image": URLS[i % len(URLS)],
                "date_published": "2026-11-04T00:00:00Z",
                "authors": [
                    {"name": PAYLOADS[(i + 10) % len(PAYLOADS)] + " Lise Meitner", "url": URLS[i % len(URLS)]}
                ],
                "tags": [PAYLOADS[(i + 11) % len(PAYLOADS)], "cs.LG"],
                "attachments": [{"url": URLS[(i + 2) % len(URLS)], "mime_type": "text/html"}],
            }
        )
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": ALL,
            "home_page_url": URLS[0],
            "items": items,
        }
    )


def rss(n: int) -> str:
    items = []
    ids = [URLS[i % len(URLS)] if i % 2 else PAYLOADS[i % len(PAYLOADS)] for i in range(n)]
    for i in range(n):
        items.append(f"""<item>
<title>Efficient language models {i} {x(PAYLOADS[(i + 12) % len(PAYLOADS)])}</title>
<link>{x(URLS[i % len(URLS)])}</link>
<guid isPermaLink="{"true" if i % 2 else "false"}">{x(ids[i])}</guid>
<description>{x(ALL)} Efficient inference.</description>
<content:encoded><![CDATA[{ALL} <p>Efficient inference, {i}.</p>]]></content:encoded>
<author>{x(PAYLOADS[i % len(PAYLOADS)])} Rosalind Franklin</author>
<dc:creator>{x(PAYLOADS[(i + 1) % len(PAYLOADS)])} Marie Curie</dc:creator>
<category>{x(PAYLOADS[(i + 2) % len(PAYLOADS)])}</category>
<comments>{x(URLS[i % len(URLS)])}</comments>
<enclosure url="{x(URLS[i % len(URLS)])}" type="text/html" length="1"/>
<pubDate>Thu, 05 Nov 2026 00:00:00 GMT</pubDate>
</item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>{x(ALL)}</title><link>{x(URLS[0])}</link><description>{x(ALL)}</description>
{"".join(items)}
</channel></rss>"""


def atom(n: int) -> str:
    entries = []
    for i in range(n):
        entries.append(f"""<entry>
<id>{x(URLS[i % len(URLS)] if i % 2 else "urn:x:" + PAYLOADS[i % len(PAYLOADS)])}</id>
<title type="html">Vision language models {i} {x(PAYLOADS[i % len(PAYLOADS)])}</title>
<link rel="alternate" href="{x(URLS[i % len(URLS)])}"/>
<updated>2026-11-06T00:00:00Z</updated>
<author><name>{x(PAYLOADS[(i + 3) % len(PAYLOADS)])} Hedy Lamarr</name>
<uri>{x(URLS[i % len(URLS)])}</uri></author>
<category term="{x(PAYLOADS[(i + 4) % len(PAYLOADS)])}" label="{x(ALL)}"/>
<summary type="html">{x(ALL)}</summary>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p onclick="alert(31)">Vision</p>
<script>alert(32)</script><a href="javascript:alert(33)">x</a></div></content>
</entry>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">{x(ALL)}</title>
<id>urn:x:feed</id><updated>2026-11-06T00:00:00Z</updated>
<link rel="alternate" href="{x(URLS[0])}"/>
{"".join(entries)}
</feed>"""


SOURCES = {
    "api": ("arxiv-api.xml", arxiv_api),
    "listing": ("arxiv-listing.xml", arxiv_listing),
    "hf": ("hf-daily.json", hugging_face),
    "jsonfeed": ("items.json", json_feed),
    "rss": ("blog.xml", rss),
    "atom": ("site.atom", atom),
}
PER_SOURCE = 2 * len(PAYLOADS)
TOPICS = """topics:
  - slug: language-models
    title: Language models
    query: 'language model* OR alert OR script'
  - slug: everything
    title: Everything
    query: 'language OR model*'
"""

# Every output, with how its consumer decodes it.
HTML, XML, JSON = "html", "xml", "json"
OUTPUTS = [
    ("/", HTML),
    ("/topics/language-models", HTML),
    ("/topics/everything?limit=200", HTML),
    ("/search?q=language", HTML),
    ("/search?q=click+OR+custom+OR+models", HTML),
    ("/feeds/everything.atom?limit=200", XML),
    ("/feeds/everything.rss?limit=200", XML),
    ("/feeds/everything.json?limit=200", JSON),
    ("/feeds/all.atom?limit=200&q=click", XML),
    ("/feeds/all.rss?limit=200&q=custom", XML),
    ("/feeds/all.json?limit=200&q=go+OR+x", JSON),
    ("/feeds/language-models.atom", XML),
    ("/feeds.opml", XML),
    ("/api/papers?limit=200", JSON),
    ("/api/papers?limit=200&q=click+OR+pages", JSON),
    ("/api/preview?q=language+AND+model*", JSON),
    ("/api/topics", JSON),
    ("/api/sources", JSON),
    ("/healthz", JSON),
]


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, int]]:
    """One store per module (both stores in CI): the suite's database_url fixture is per test."""
    folder = tmp_path_factory.mktemp("hostile-site")
    url = shared_database_url(folder, "hostile")
    for file, make in SOURCES.values():
        (folder / file).write_text(make(PER_SOURCE), encoding="utf-8")
    sources = "sources:\n" + "".join(
        f"  - {{name: {name}, url: 'file:{file}'}}\n" for name, (file, _) in SOURCES.items()
    )
    config = make_config(folder, sources + TOPICS, url)
    store = open_store(config)
    pipeline = Pipeline(config, store)
    outcomes = pipeline.run(pipeline.select())
    assert not [o for o in outcomes if o.failed], outcomes
    app = create_app(config, store=store)
    yield app, store.paper_count()
    store.close()


def test_hostile_papers_are_stored_not_refused(hostile_site: tuple[object, int]) -> None:
    """The payloads are content to clean, not a reason to drop papers."""
    _, papers = hostile_site
    assert papers >= len(SOURCES) * PER_SOURCE * 3 // 4, papers


@pytest.mark.parametrize(("path", "decoding"), OUTPUTS)
def test_no_output_carries_active_content(hostile_site: tuple[object, int], path: str, decoding: str) -> None:
    app, _ = hostile_site
    response = app.test_client().get(path)  # type: ignore[attr-defined]
    assert response.status_code == 200, (path, response.data[:300])
    body: bytes = response.data
    if decoding == HTML:
        found = active_in_html(body.decode())
        names = ("Lovelace", "Turing", "Noether", "Meitner", "Franklin", "Lamarr")
        assert any(name in body.decode() for name in names), "the page shows none of the papers"
    elif decoding == XML:
        found = list(active_in_xml(body))
    else:
        found = list(active_in_json(json.loads(body)))
    assert not found, f"{path}: {found[:10]}"


def test_papers_keep_their_words_once_the_markup_is_gone(hostile_site: tuple[object, int]) -> None:
    """What the cleaning leaves is the text a reader should see, not an empty shell."""
    app, _ = hostile_site
    items = app.test_client().get("/feeds/all.json?limit=200").get_json()["items"]  # type: ignore[attr-defined]
    titles = {item["title"] for item in items}
    for word in ("Language model pruning", "Sparse language models", "Diffusion language models",
                 "Quantized language models", "Efficient language models",
                 "Vision language models"):  # fmt: skip
        assert any(title.startswith(word) for title in titles), (word, sorted(titles)[:5])
    names = {a["name"] for item in items for a in item.get("authors", [])}
    assert {"Ada Lovelace", "Grace Hopper", "Emmy Noether", "Marie Curie"} <= {
        " ".join(n.split()[-2:]) for n in names
    }, sorted(names)[:10]
