"""Figures and exercises numbered per chapter (helpers/book/numbering.py)."""

from helpers.book.numbering import per_document


def test_numbers_restart_on_every_page_in_their_order():
    book = {"a": {"figure": {"f-one": (1,), "f-two": (2,)}, "exercise": {"a-x": (1,)}},
            "b": {"figure": {"f-four": (4,), "f-three": (3,)},
                  "exercise": {"b-y": (3,), "b-x": (2,)}}}
    renumbered, changed = per_document(book)
    assert renumbered["a"] == book["a"]
    assert renumbered["b"] == {"figure": {"f-three": (1,), "f-four": (2,)},
                               "exercise": {"b-x": (1,), "b-y": (2,)}}
    assert changed == ["b"]


def test_a_page_without_numbered_items_is_kept():
    assert per_document({"empty": {}}) == ({"empty": {}}, [])
