"""Hypothesis helpers: provider items with one field broken, for the tests that check a
malformed item becomes an UnknownEvent and never fails its batch."""

import copy
from typing import Any

from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


def _paths(item: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for key, value in item.items():
        paths.append((*prefix, key))
        if isinstance(value, dict):
            paths += _paths(value, (*prefix, key))
    return paths


@st.composite
def broken(draw: st.DrawFn, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One of ``items`` with one field, at any depth, deleted or set to any JSON value."""
    item = copy.deepcopy(draw(st.sampled_from(items)))
    *parents, key = draw(st.sampled_from(_paths(item)))
    target = item
    for parent in parents:
        target = target[parent]
    if draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(JSON)
    return item
