"""Sanitising remote HTML, extracting plain text and rendering local text: exact outputs."""

from __future__ import annotations

import pytest

from fedcomments.ap.sanitize import plain_text, sanitize_html, text_to_html

REL = 'rel="nofollow noopener noreferrer"'


@pytest.mark.parametrize(("html", "expected"), [
    ("<p>hi<script>alert(1)</script></p>", "<p>hi</p>"),
    ("<img src=x onerror=alert(1)>", ""),
    ('<p onclick="steal()">a</p>', "<p>a</p>"),
    ('<p style="position:fixed;top:0">s</p>', "<p>s</p>"),
    ('<iframe src="https://evil.example/">inner</iframe>t', "t"),
    ("<svg onload=alert(1)><script>alert(1)</script><text>t</text></svg>z", "z"),
    ("<math><mi>x</mi></math>after", "after"),
    ("<style>p { color: red }</style>ok", "ok"),
    ("<form><input value=x><button>b</button></form>", "b"),
    ("<!-- comment -->c", "c"),
    ("<scr<script>ipt>alert(1)</script>", "ipt&gt;alert(1)"),
    ("<<script>script>alert(1)<</script>/script>", "&lt;/script&gt;"),
])
def test_scripts_styles_and_event_handlers_are_removed(html: str, expected: str) -> None:
    """XSS vectors come out inert, with exactly the remaining text."""
    assert sanitize_html(html) == expected


@pytest.mark.parametrize("href", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
    "jav&#x09;ascript:alert(1)", "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)", "/relative/path", "mailto:a@b.example",
])
def test_links_we_cannot_follow_become_their_text(href: str) -> None:
    """As Mastodon does: unsafe, relative and non-web links turn into plain text."""
    assert sanitize_html(f'<p><a href="{href}">click</a></p>') == "<p>click</p>"


def test_web_links_get_rel_and_lose_other_attributes() -> None:
    """http(s) links keep href, allowlisted classes and get rel; target/onclick go."""
    html = ('<a href="https://x.example/?a=1&b=2" class="u-url mention evil" target="_self" '
            'rel="opener" onclick="x()">@bob</a>')
    assert sanitize_html(html) == \
        f'<a href="https://x.example/?a=1&amp;b=2" class="u-url mention" {REL}>@bob</a>'


def test_mastodon_link_markup_survives() -> None:
    """Mastodon's mention and shortened-link markup comes through intact."""
    html = ('<p><span class="h-card"><a href="https://m.example/@bob" class="u-url mention">'
            '@<span>bob</span></a></span> see <a href="https://example.com/a/very/long">'
            '<span class="invisible">https://</span><span class="ellipsis">example.com/a/'
            '</span><span class="invisible">very/long</span></a></p>')
    assert sanitize_html(html) == (
        f'<p><span class="h-card"><a href="https://m.example/@bob" class="u-url mention" {REL}>'
        f'@<span>bob</span></a></span> see <a href="https://example.com/a/very/long" {REL}>'
        '<span class="invisible">https://</span><span class="ellipsis">example.com/a/</span>'
        '<span class="invisible">very/long</span></a></p>')


def test_other_link_protocols_mastodon_allows() -> None:
    """gemini: and the other Mastodon LINK_PROTOCOLS stay links."""
    assert sanitize_html('<a href="gemini://g.example/">g</a>') == \
        f'<a href="gemini://g.example/" {REL}>g</a>'


def test_unknown_classes_are_dropped() -> None:
    """Only the allowlisted classes stay; a span with none left loses the attribute."""
    assert sanitize_html('<span class="h-card evil">x</span><span class="evil">y</span>') == \
        '<span class="h-card">x</span><span>y</span>'


def test_headings_render_as_bold_paragraphs() -> None:
    """As Mastodon renders them: h1–h6 become <p><strong>."""
    assert sanitize_html('<h1 class="x">Title</h1><h6>Small</h6><p>b</p>') == \
        "<p><strong>Title</strong></p><p><strong>Small</strong></p><p>b</p>"


def test_lists_keep_start_and_reversed() -> None:
    """ol keeps a numeric start and reversed; junk starts are dropped."""
    assert sanitize_html('<ol start="3" reversed><li>a</li></ol><ol start="x"><li>b</li></ol>') \
        == '<ol start="3" reversed><li>a</li></ol><ol><li>b</li></ol>'


def test_allowed_formatting_passes_through() -> None:
    """Quotes, code, lists and inline formatting stay."""
    html = ("<blockquote><p>q</p></blockquote><pre><code>x &lt; y</code></pre><ul><li>u</li>"
            "</ul><p><em>e</em><strong>s</strong><b>b</b><i>i</i><u>u</u><s>s</s><del>d</del>"
            "<sub>1</sub><sup>2</sup><br></p>")
    assert sanitize_html(html) == html


def test_unknown_elements_keep_their_text() -> None:
    """div, table and friends vanish; their text stays."""
    assert sanitize_html("<div><p>d</p></div><table><tr><td>c</td></tr></table>") == "<p>d</p>c"


def test_broken_nesting_is_repaired() -> None:
    """Unclosed tags are closed in order."""
    assert sanitize_html("<p><b>unclosed <i>nest</p>") == "<p><b>unclosed <i>nest</i></b></p>"


def test_entities_are_normalised() -> None:
    """Entities decode and re-encode: only &, < and > stay escaped."""
    assert sanitize_html("&lt;tag&gt; &amp; &quot; &#39; &nbsp;x") == \
        "&lt;tag&gt; &amp; \" ' \xa0x"


def test_empty_input() -> None:
    """Nothing in, nothing out."""
    assert sanitize_html("") == ""


# -- length cap ---------------------------------------------------------------------------------

def test_truncation_closes_tags_and_marks_the_cut() -> None:
    """A long paragraph is cut inside its text, ends with … and is closed."""
    assert sanitize_html("<p>" + "a" * 100 + "</p>", max_length=30) == \
        "<p>" + "a" * 22 + "…</p>"


def test_truncation_never_cuts_a_tag_or_entity() -> None:
    """A link that does not fit is left out whole; an entity is never split."""
    html = '<p><b>bold</b> and <a href="https://x.example/long/url">link text</a></p>'
    assert sanitize_html(html, max_length=60) == "<p><b>bold</b> and …</p>"
    assert sanitize_html("<p>a &amp; b &amp; c &amp; d</p>", max_length=16) == "<p>a &amp; …</p>"


def test_truncation_does_not_open_empty_elements() -> None:
    """An element with no room for content is not opened."""
    html = "<ul><li>one</li><li>two</li><li>three</li></ul>"
    assert sanitize_html(html, max_length=30) == "<ul><li>one</li>…</ul>"


@pytest.mark.parametrize("limit", [0, 1, 5, 17, 40])
def test_output_never_exceeds_the_cap(limit: int) -> None:
    """Whatever the cap, the result fits in it."""
    html = '<p><b>x</b><a href="https://x.example/">y &amp; z</a></p><ol><li>w</li></ol>' * 3
    assert len(sanitize_html(html, max_length=limit)) <= limit


# -- plain text ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("html", "expected"), [
    ("<p>Hello <b>World</b></p><p>Second&nbsp;para</p>", "Hello World Second para"),
    ("a<br>b", "a b"),
    ("<script>alert(1)</script>visible", "visible"),
    ("tab\tnew\nline   spaces", "tab new line spaces"),
    ("&lt;b&gt; &amp; &#x41;", "<b> & A"),
    ("x<y", "x<y"),
    ("", ""),
])
def test_plain_text(html: str, expected: str) -> None:
    """Tags stripped, entities decoded, whitespace collapsed."""
    assert plain_text(html) == expected


def test_plain_text_strips_bidi_overrides_and_controls() -> None:
    """RLO, isolates, marks, BOM and control characters go; joiners in emoji stay."""
    assert plain_text("Al\u202eice\u2066x\u2069\u200f") == "Alicex"
    assert plain_text("ctl\x07\x00chr\ufeff") == "ctlchr"
    assert plain_text("👩\u200d💻") == "👩\u200d💻"


# -- text to HTML -------------------------------------------------------------------------------

def test_text_paragraphs_and_line_breaks() -> None:
    """Blank lines make paragraphs, single newlines <br>; CRLF is handled."""
    assert text_to_html("Hello\nworld\n\nSecond para") == \
        "<p>Hello<br>world</p><p>Second para</p>"
    assert text_to_html("x\r\n\r\n\r\ny") == "<p>x</p><p>y</p>"
    assert text_to_html("  \n ") == ""


def test_text_is_escaped() -> None:
    """Markup typed by a reader is shown, not run."""
    assert text_to_html('<script>alert(1)</script> & "q"') == \
        '<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; "q"</p>'


def test_text_urls_are_linked_with_ugc_rel() -> None:
    """http(s) URLs become links; trailing punctuation and an unopened ) stay outside."""
    rel = 'rel="nofollow noopener noreferrer ugc"'
    assert text_to_html("See https://example.com/a?b=1&c=2. Or (https://w.example/Foo_(bar)).") \
        == (f'<p>See <a href="https://example.com/a?b=1&amp;c=2" {rel}>'
            'https://example.com/a?b=1&amp;c=2</a>. Or (<a href="https://w.example/Foo_(bar)" '
            f'{rel}>https://w.example/Foo_(bar)</a>).</p>')


def test_text_links_cannot_break_out_of_the_attribute() -> None:
    """A quote ends the URL; javascript: is never linked."""
    assert text_to_html('javascript:alert(1) https://ok.example/"onmouseover=x') == (
        '<p>javascript:alert(1) <a href="https://ok.example/" rel="nofollow noopener noreferrer '
        'ugc">https://ok.example/</a>"onmouseover=x</p>')


def test_text_bare_scheme_is_not_a_link() -> None:
    """"http://" alone is text."""
    assert text_to_html("http://") == "<p>http://</p>"


def _sample_contents() -> list[str]:
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "shared" / "samples"
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("content", "summary") and isinstance(value, str):
                    found.append(value)
                elif key == "contentMap" and isinstance(value, dict):
                    found.extend(v for v in value.values() if isinstance(v, str))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted(root.glob("*/*.json")) if root.is_dir() else []:
        walk(json.loads(path.read_text(encoding="utf-8")))
    return found


FAST_PATH_CASES = [
    '<p>Hi <a href="https://x.example/">x</a> <span class="h-card">@a</span></p>',
    "<h2>Title</h2><p>text</p>", "<a>no href</a>", "<a name=x>anchor</a> text",
    '<ol start="3" reversed><li>a</li></ol>', "a&nbsp;b", 'text with ="" inside',
    "<p>" + "long " * 3000 + "</p>", '<a href="javascript:alert(1)">x</a>',
    '<a title="a>b" href="https://x.example/">t</a>',
]


def test_fast_path_equals_rewriter_on_samples_and_edges() -> None:
    """Given real and edge-case HTML, skipping the rewriter never changes the output."""
    from fedcomments.ap.sanitize import _cleaner, _Rewriter

    cases = [*FAST_PATH_CASES, *_sample_contents()]
    for text in cases:
        for limit in (50_000, 200):
            expected = _Rewriter(limit).run(_cleaner().clean(text))
            assert sanitize_html(text, max_length=limit) == expected, text
