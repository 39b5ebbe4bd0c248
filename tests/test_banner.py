"""The build banner: every page says which profile, commit and date it was built from."""

import json
from types import SimpleNamespace

from helpers.book import banner


def _manifests(root, profiles: dict[str, str]):
    (root / "chapters").mkdir(parents=True, exist_ok=True)
    for chapter, profile in profiles.items():
        (root / "chapters" / f"{chapter}.manifest.json").write_text(
            json.dumps({"chapter": chapter, "profile": profile}))


def test_a_quick_build_says_its_numbers_check_the_pipeline(tmp_path):
    _manifests(tmp_path, {"a": "quick", "b": "quick"})
    assert banner.executed_profiles(tmp_path) == {"quick": ["a", "b"]}
    text = banner.banner_text(banner.executed_profiles(tmp_path), "commit abc1234",
                              "2026-12-01")
    assert text.startswith("Built from commit abc1234 on 2026-12-01, quick profile")
    assert "check the pipeline, not the methods" in text


def test_a_default_build_names_its_profile_and_a_mixed_one_counts_them(tmp_path):
    text = banner.banner_text({"default": ["a", "b"]}, "commit abc1234", "2026-12-01")
    assert "default profile, the sizes this book is published with" in text
    assert "pipeline" not in text
    mixed = banner.banner_text({"default": ["a"], "quick": ["b", "c"]}, "commit x", "d")
    assert "default (1 chapter), quick (2 chapters)" in mixed and "pipeline" in mixed
    assert "no chapter" in banner.banner_text({}, "commit x", "d")


def test_the_sphinx_hook_sets_the_announcement_with_this_checkouts_commit(tmp_path):
    _manifests(tmp_path, {"a": "default"})
    config = SimpleNamespace(html_theme_options={"repository_url": "u"})
    banner.set_announcement(SimpleNamespace(srcdir=str(tmp_path)), config)
    assert config.html_theme_options["repository_url"] == "u"
    assert "an unknown commit" in config.html_theme_options["announcement"]  # not a checkout
    assert banner.commit(banner.ROOT).startswith("commit ")
