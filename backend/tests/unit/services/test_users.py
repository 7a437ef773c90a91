"""Use cases of users and posts with a fake router: ids no BIGINT can hold, the keys each write
invalidates, canonical next-page links."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import NotFound
from app.models import BIGINT_MAX
from app.schemas import PostPage
from app.services import cache_keys, users
from app.services.units import Call
from tests.unit.services.test_units import FakeRouter, make_units


class NoDatabase(FakeRouter):
    """A router no use case may reach."""

    def read(self, fetch: Any, floor: str | None = None, **_: Any) -> tuple[str, Any]:
        pytest.fail("the database was asked")

    def writer(self) -> Any:
        pytest.fail("the database was asked")


@pytest.mark.parametrize(
    "use_case",
    [
        lambda units: users.get_user(units, Call(), BIGINT_MAX + 1),
        lambda units: users.update_user(units, Call(), BIGINT_MAX + 1, {"name": "x"}, None),
        lambda units: users.delete_user(units, Call(), BIGINT_MAX + 1, None),
        lambda units: users.create_post(units, Call(), BIGINT_MAX + 1, "hi", None),
        lambda units: users.list_posts(units, Call(), BIGINT_MAX + 1, PostPage.model_validate({})),
    ],
)
def test_an_id_no_bigint_can_hold_is_not_found_without_asking_the_database(use_case: Any) -> None:
    units, _ = make_units(NoDatabase())
    with pytest.raises(NotFound, match="does not exist"):
        use_case(units)


def test_every_write_names_the_keys_whose_answers_it_changes() -> None:
    assert set(cache_keys.after_user_created(5)) == {cache_keys.user(5), cache_keys.posts(5)}
    assert set(cache_keys.after_user_changed(5)) == {cache_keys.user(5)}
    assert set(cache_keys.after_user_deleted(5)) == {cache_keys.user(5), cache_keys.posts(5)}
    assert set(cache_keys.after_post_created(5)) == {cache_keys.posts(5)}


def test_a_full_page_links_to_the_next_by_the_resources_own_path() -> None:
    document = users.page([{"id": 3}, {"id": 2}], 2, "/api/users/5/posts", "limit=2&before=2")
    assert document["next"] == "/api/users/5/posts?limit=2&before=2"
    assert users.page([{"id": 3}], 2, "/api/users/5/posts", "x")["next"] is None
