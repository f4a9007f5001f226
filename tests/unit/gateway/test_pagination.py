import pytest

from kith.gateway.errors import ApiError
from kith.gateway.pagination import Cursors, keyset_page, open_cursor, seal_cursor

CURSORS = Cursors("test-secret")


def test_keyset_pages_walk_the_whole_list_once() -> None:
    items = [(t % 7, f"id{t}") for t in range(23)]
    seen, cursor = [], None
    while True:
        page = keyset_page(items, lambda i: [i[0], i[1]], 5, cursor, CURSORS, "things")
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(items)


def test_forged_or_foreign_cursors_are_refused() -> None:
    good = seal_cursor(CURSORS, [1, "a"], "things")
    assert open_cursor(CURSORS, good, "things") == [1, "a"]
    with pytest.raises(ApiError) as foreign:
        open_cursor(CURSORS, good, "others")
    assert foreign.value.status == 400 and "cursor" in foreign.value.details
    body, mac = good.split(".")
    for forged in (f"{body}.{mac[:-2]}AA", "garbage", "a.b.c", Cursors("other").encode(1)):
        with pytest.raises(ApiError):
            CURSORS.decode(forged)


def test_no_next_cursor_on_last_page() -> None:
    assert seal_cursor(CURSORS, "", "x") is None
    assert keyset_page([1, 2], lambda i: [i], 5, None, CURSORS, "n").next_cursor is None
