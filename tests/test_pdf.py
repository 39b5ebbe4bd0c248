"""The book as one PDF (helpers/book/pdf.py): the print page it hands to Chromium."""

import pytest

from helpers.book.pdf import print_html

PAGE = ('<html><head><link rel="stylesheet" href="../_static/book.css" />'
        '<script src="../_static/x.js"></script></head><body><nav>menu</nav>'
        '<article class="bd-article">{body}</article><footer>f</footer></body></html>')


def site_with(tmp_path, pages):
    for name, body in pages.items():
        path = tmp_path / f"{name}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PAGE.format(body=body))
    return tmp_path


def test_every_page_article_in_order_with_the_styles_and_no_scripts(tmp_path):
    site = site_with(tmp_path, {"book/intro": "<h1>Intro</h1>",
                                "chapters/one": '<h1>One</h1><img src="../_images/a.png">'})
    out = print_html(site, ["book/intro", "chapters/one"], "Title")
    assert out.index("<h1>Intro</h1>") < out.index("<h1>One</h1>")
    assert out.count("break-before: page") == 2
    assert '<link rel="stylesheet" href="../_static/book.css" />' in out
    assert "<script" not in out and "menu" not in out and "<footer>" not in out
    assert 'src="../_images/a.png"' in out  # the print page sits one folder deep, as pages do


def test_a_page_without_an_article_is_named(tmp_path):
    site = site_with(tmp_path, {"book/intro": "<h1>Intro</h1>"})
    (site / "chapters").mkdir()
    (site / "chapters" / "broken.html").write_text("<html><body>no article</body></html>")
    with pytest.raises(ValueError, match="chapters/broken"):
        print_html(site, ["book/intro", "chapters/broken"])
