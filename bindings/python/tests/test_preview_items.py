"""The items of a preview the package makes: each PreviewItem is made the first time it is read
(making 100,000 of them cost more than the whole preview in Rust), yet the sequence must do all
a host does with the list the generated method answers, with the very same objects inside."""

import copy
import pickle
import threading

import pytest
import sms_text as sms
from sms_testkit import client_kind, recipient

GENERATED_PREVIEW = sms.SmsClient.preview.__wrapped__
BODY = "Hi {first_name}, {course} starts Monday."


def records():
    staff = sms.RecipientKind.STAFF
    return [
        recipient("ok", "(202) 555-0100", course="Pottery"),
        recipient("emoji", "2025550101", first_name="Zo\u00eb \U0001F3A8", course="Art"),
        recipient("no-text", "2025550102", kind=client_kind("Email"), course="Yoga"),
        recipient("staff-yes", "2025550103", kind=staff(permitted_sms_text=True), course="Yoga"),
        recipient("staff-no", "2025550104", kind=staff(permitted_sms_text=False), course="Yoga"),
        recipient("no-mobile", "", course="Yoga"),
        recipient("bad", "12345", course="Yoga"),
        recipient("missing", "2025550105", course=""),
        recipient("long", "2025550106", course="\u20ac" * 200),
        recipient(" spaced ", "2025550107", course="Yoga"),
    ]


@pytest.fixture
def both(sim_client):
    """The package's preview and the generated method's, of the same records."""
    rs = records()
    return sim_client.preview(rs, BODY), GENERATED_PREVIEW(sim_client, rs, BODY)


def test_items_are_made_only_when_read(both):
    fast, _ = both
    assert not isinstance(fast.items, list), "the package's lazy sequence is in use"
    assert fast.items._items == [None] * len(records())
    fast.items[3]
    assert sum(i is not None for i in fast.items._items) == 1


def test_the_items_read_as_the_generated_list(both):
    fast, generic = both
    items, expected = fast.items, generic.items
    n = len(expected)
    assert len(items) == n and bool(items)
    for i in range(-n, n):
        got, want = items[i], expected[i]
        assert got == want
        # The same objects, not lookalikes: same classes and same attributes, in order.
        assert type(got) is type(want) and type(got.outcome) is type(want.outcome)
        assert list(vars(got)) == list(vars(want))
        assert vars(got.outcome) == vars(want.outcome)
        assert list(vars(got.outcome)) == list(vars(want.outcome))
        assert items[i] is got, "each item is made once and kept"
    for bad in (n, -n - 1):
        with pytest.raises(IndexError):
            items[bad]
    with pytest.raises(TypeError):
        items["0"]
    for s in (slice(None), slice(1, 5), slice(None, None, -2), slice(-3, None), slice(7, 2)):
        assert items[s] == expected[s] and type(items[s]) is list
    assert list(items) == expected
    assert list(reversed(items)) == list(reversed(expected))
    assert items == expected and expected == items and not items != expected
    assert fast == generic, "Preview.__eq__ compares its items"
    assert repr(items) == repr(expected)
    # str(Preview) formats its items as a list's str. (Not compared whole: the generated
    # method's skipped_by_reason comes from a Rust HashMap, in an order that changes from run
    # to run; the package's is sorted by reason.)
    assert str(fast).startswith("Preview(items={}, totals=".format(expected))
    assert fast.totals == generic.totals
    nobody = sms.PreviewItem(record_id="nobody", outcome=expected[0].outcome)
    assert expected[4] in items and nobody not in items
    assert items.index(expected[4]) == 4 and items.count(expected[4]) == 1
    assert items + [1] == expected + [1] and [1] + items == [1] + expected
    assert items + items == expected + expected
    assert items * 2 == expected * 2 and 2 * items == 2 * expected
    assert items.copy() == expected and type(items.copy()) is list
    assert pickle.loads(pickle.dumps(items)) == expected
    assert type(copy.copy(items)) is list and copy.deepcopy(items) == expected
    assert pickle.loads(pickle.dumps(fast)) == generic
    assert items != expected[:-1] and items != expected + [1] and items != tuple(expected)
    with pytest.raises(TypeError):
        hash(items)


def test_a_different_item_makes_the_sequences_differ(sim_client):
    rs = records()
    fast = sim_client.preview(rs, BODY)
    rs[0].fields = {"course": "Welding"}
    other = GENERATED_PREVIEW(sim_client, rs, BODY)
    assert fast.items != other.items and other.items != fast.items
    assert fast != other


@pytest.mark.parametrize(
    "change",
    [
        lambda l: l.append("x"),
        lambda l: l.extend(["x", "y"]),
        lambda l: l.insert(2, "x"),
        lambda l: l.pop(),
        lambda l: l.pop(0),
        lambda l: l.remove(l[3]),
        lambda l: l.clear(),
        lambda l: l.reverse(),
        lambda l: l.sort(key=lambda item: item.record_id),
        lambda l: l.__setitem__(1, "x"),
        lambda l: l.__setitem__(slice(1, 3), ["x"]),
        lambda l: l.__delitem__(0),
        lambda l: l.__delitem__(slice(None, None, 2)),
        lambda l: l.__iadd__(["x"]),
        lambda l: l.__imul__(2),
    ],
)
def test_changes_in_place_act_as_on_a_list(both, change):
    fast, generic = both
    items, expected = fast.items, list(generic.items)
    change(items)
    change(expected)
    assert items == expected and len(items) == len(expected) and list(items) == expected
    assert repr(items) == repr(expected)


def test_threads_reading_one_item_get_one_object(sim_client):
    fast = sim_client.preview(records() * 200, BODY)
    seen, start = [], threading.Barrier(8)

    def read():
        start.wait()
        seen.append([fast.items[i] for i in range(len(fast.items))])

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8
    for i in range(len(fast.items)):
        assert len({id(run[i]) for run in seen}) == 1


def test_an_iteration_sees_changes_made_during_it_as_a_lists_does(both):
    fast, generic = both
    items, expected = fast.items, list(generic.items)
    runs = []
    for sequence in (items, expected):
        it = iter(sequence)
        seen = [next(it), next(it)]
        sequence.append("late")
        del sequence[5]
        seen.extend(it)
        runs.append(seen)
    assert runs[0] == runs[1]
