"""The lifecycle state machine against DESIGN.md's table."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import lifecycle as lc

TABLE = {  # DESIGN.md, verbatim: state -> next states
    "reported": {"accepted", "rejected", "merged"},
    "accepted": {"dispatched", "merged", "rejected"},
    "dispatched": {"acknowledged", "returned"},
    "returned": {"dispatched", "rejected"},
    "acknowledged": {"on_site", "returned", "deferred"},
    "on_site": {"handled", "deferred"},
    "deferred": {"acknowledged", "on_site"},
    "handled": {"verified", "dispatched"},
    "verified": {"closed"},
    "closed": set(),
    "rejected": set(),
    "merged": set(),
}
ACTIONS = sorted({a for nxt in lc.TRANSITIONS.values() for a in nxt})


def test_table_matches_design():
    assert {s: set(n.values()) for s, n in lc.TRANSITIONS.items()} == TABLE
    assert lc.TERMINAL == {"closed", "rejected", "merged"}


@settings(deadline=None, max_examples=300)
@given(st.sampled_from(list(TABLE)), st.sampled_from(ACTIONS))
def test_every_transition_is_legal_or_refused_with_the_rule(status, action):
    allowed = lc.TRANSITIONS[status]
    if action in allowed:
        assert lc.next_status(status, action) == allowed[action]
        assert allowed[action] in TABLE[status]
    else:
        with pytest.raises(lc.IllegalTransition) as err:
            lc.next_status(status, action)
        assert status in str(err.value) and action in str(err.value)


@settings(deadline=None, max_examples=200)
@given(st.lists(st.sampled_from(ACTIONS), max_size=30))
def test_random_walks_stay_inside_the_table(actions):
    status = "reported"
    for a in actions:
        try:
            nxt = lc.next_status(status, a)
        except lc.IllegalTransition:
            continue
        assert nxt in TABLE[status]
        status = nxt
    assert status in TABLE


def test_overlays_keep_status_and_check_preconditions():
    assert lc.next_status("dispatched", "whistle") == "dispatched"
    with pytest.raises(lc.IllegalTransition):
        lc.check_overlay("dispatched", "evaluate")
    lc.check_overlay("closed", "evaluate")
    with pytest.raises(lc.IllegalTransition):
        lc.check_overlay("closed", "whistle")


@pytest.mark.parametrize("target", ["closed", "handled", "on_site", "rejected", "merged", "deferred", "returned"])
def test_standard_paths_are_legal(target):
    steps = lc.path_to(target, rework=1, deferred=True)
    status = "reported"
    for s in steps:
        assert s.from_status == status
        status = lc.next_status(status, s.action)
    assert status == target
