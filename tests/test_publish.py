"""Publishing: the workflow builds with `make publish-check`, and the site check refuses a site
that is incomplete, unlabelled or leaks local paths."""

import re

import yaml

from helpers.book import banner, publish
from helpers.paths import ROOT


def test_the_workflow_builds_with_make_publish_check_and_uploads_its_folder():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs == ["make publish-check PUBLISH_DIR=$PUBLISH_DIR JOBS=$JOBS"]
    folder = workflow["jobs"]["build"]["env"]["PUBLISH_DIR"]
    upload = next(s for s in steps if s.get("uses", "").startswith(
        "actions/upload-pages-artifact"))
    assert upload["with"]["path"] == f"{folder}/_build/html"
    cached = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert "chapters" in cached["with"]["path"].split()  # executed chapters and manifests
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^publish-check:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "--profile default" in recipe and "helpers.book.publish" in recipe
    assert "--path-output $(PUBLISH_DIR)" in recipe


def _site(tmp_path, pages, text):
    site = tmp_path / "html"
    for page in ["index", *pages]:
        (site / page).parent.mkdir(parents=True, exist_ok=True)
        (site / f"{page}.html").write_text(text)
    (site / ".nojekyll").write_text("")
    return site


def test_a_complete_labelled_site_passes_and_each_fault_is_named(tmp_path):
    pages = ["book/intro", "chapters/a"]
    good = banner.banner_text({"default": ["a"]}, "commit abc1234", "2026-12-01")
    site = _site(tmp_path, pages, f"<div>{good}</div>")
    assert publish.site_problems(site, pages, "default") == []
    quick = banner.banner_text({"quick": ["a"]}, "commit abc1234", "2026-12-01")
    (site / "chapters" / "a.html").write_text(f"<div>{quick}</div> /home/alice/book/x.py")
    problems = publish.site_problems(site, [*pages, "chapters/missing"], "default")
    assert any("chapters/a.html: the banner does not say it shows the default" in p
               for p in problems)
    assert any("local absolute path(s) ['/home/alice/']" in p for p in problems)
    assert any("'chapters/missing' but the page was not rendered" in p for p in problems)
    (site / ".nojekyll").unlink()
    assert any("no .nojekyll" in p for p in publish.site_problems(site, pages, "default"))
    assert "not a rendered book" in publish.site_problems(tmp_path, pages, "default")[0]


def test_the_toc_pages_include_the_root_and_every_chapter():
    pages = publish.toc_pages(ROOT / "_toc.yml")
    assert pages[0] == "book/intro" and "chapters/p1_transformer_clock" in pages
