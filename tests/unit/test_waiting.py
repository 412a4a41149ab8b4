"""The status waiter: geometric backoff, deadlines, unknown statuses, transient errors."""

import logging
import math
import random

import pytest

from manila_protector import exception
from manila_protector.plugins import statuses
from manila_protector.plugins import waiting


class VirtualClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


SETS = statuses.StatusSets(ready=frozenset({"available"}), pending=frozenset({"creating"}),
                          failed=frozenset({"error"}))


def ready_after(clock, seconds, polls):
    def fetch():
        polls.append(clock.now())
        return "available" if clock.now() >= seconds else "creating"
    return fetch


def make_waiter(clock, **policy):
    return waiting.Waiter(waiting.WaitPolicy(**policy), clock, random.Random(7))


def test_ready_status_on_first_poll_returns_without_sleeping():
    clock = VirtualClock()
    polls = []
    status = make_waiter(clock).wait(ready_after(clock, 0, polls), SETS,
                                     waiting.Deadline(clock, 10), "snapshot s")
    assert status == "available"
    assert polls == [0.0]
    assert clock.sleeps == []


@pytest.mark.parametrize("ready_at", [0.2, 2.0, 10.0, 60.0, 600.0])
def test_lateness_stays_within_a_quarter_of_time_waited(ready_at):
    clock = VirtualClock()
    polls = []
    make_waiter(clock).wait(ready_after(clock, ready_at, polls), SETS,
                            waiting.Deadline(clock, 10_000), "snapshot s")
    finished = polls[-1]
    assert finished >= ready_at
    # Never later than 1.25 T + the first interval, whatever T is.
    assert finished <= 1.25 * ready_at + 0.25
    # The number of polls grows with log(T) until intervals reach the cap (15 s),
    # then by one per cap interval.
    capped_polls = max(0.0, ready_at - 60.0) / (15.0 * 0.9)
    assert len(polls) <= 5 * math.log(max(ready_at, 0.25) / 0.25) + 3 + capped_polls


def test_intervals_grow_with_the_time_waited_and_are_capped():
    policy = waiting.WaitPolicy(initial_interval=0.25, backoff_factor=2.0, max_interval=3.0,
                                jitter=0.0)
    rng = random.Random(1)
    assert [policy.next_interval(t, rng) for t in (0, 0.1, 0.5, 1.0, 2.0, 10.0)] == [
        0.25, 0.25, 0.5, 1.0, 2.0, 3.0]


def test_jitter_only_shortens_intervals():
    policy = waiting.WaitPolicy(initial_interval=1.0, backoff_factor=1.0, jitter=0.5,
                                max_interval=1.0)
    rng = random.Random(3)
    values = [policy.next_interval(5.0, rng) for _ in range(200)]
    assert all(0.5 <= v <= 1.0 for v in values)
    assert len(set(values)) > 100


@pytest.mark.parametrize("seed", range(20))
def test_lateness_bound_holds_whatever_the_jitter(seed):
    clock = VirtualClock()
    polls = []
    waiter = waiting.Waiter(waiting.WaitPolicy(jitter=0.5), clock, random.Random(seed))
    waiter.wait(ready_after(clock, 37.0, polls), SETS, waiting.Deadline(clock, 1000), "s")
    assert polls[-1] <= 1.25 * 37.0 + 0.25


def test_failed_status_ends_the_wait_and_is_returned():
    clock = VirtualClock()
    status = make_waiter(clock).wait(lambda: "error", SETS, waiting.Deadline(clock, 10), "s")
    assert status == "error"


def test_unknown_status_fails_at_once_instead_of_spinning():
    clock = VirtualClock()
    with pytest.raises(exception.OperationFailed) as info:
        make_waiter(clock).wait(lambda: "bogus_status", SETS, waiting.Deadline(clock, 10),
                                "snapshot s")
    assert "bogus_status" in str(info.value)
    assert info.value.details["status"] == "bogus_status"
    assert clock.sleeps == []


def test_deadline_raises_typed_retryable_error_naming_the_status():
    clock = VirtualClock()
    with pytest.raises(exception.DeadlineExceeded) as info:
        make_waiter(clock).wait(lambda: "creating", SETS, waiting.Deadline(clock, 5.0),
                                "snapshot s")
    assert info.value.retryable
    assert "'creating'" in str(info.value)
    # The last poll happens at the deadline, never past it.
    assert clock.t == pytest.approx(5.0)


def test_transient_errors_are_retried_within_the_deadline():
    clock = VirtualClock()
    answers = iter([exception.ManilaUnavailable("503"), exception.ManilaUnavailable("503"),
                    "creating", "available"])

    def fetch():
        item = next(answers)
        if isinstance(item, Exception):
            raise item
        return item

    assert make_waiter(clock).wait(fetch, SETS, waiting.Deadline(clock, 60), "s") == "available"


def test_transient_errors_until_the_deadline_say_manila_was_unreachable():
    clock = VirtualClock()

    def fetch():
        raise exception.ManilaUnavailable("HTTP 503")

    with pytest.raises(exception.DeadlineExceeded) as info:
        make_waiter(clock).wait(fetch, SETS, waiting.Deadline(clock, 3), "share x")
    assert "unreachable" in str(info.value)


def test_non_retryable_errors_propagate_at_once():
    clock = VirtualClock()

    def fetch():
        raise exception.NotAuthorized("401")

    with pytest.raises(exception.NotAuthorized):
        make_waiter(clock).wait(fetch, SETS, waiting.Deadline(clock, 60), "s")
    assert clock.sleeps == []


def test_first_delay_spares_the_poll_a_change_just_made_pointless():
    clock = VirtualClock()
    polls = []
    waiter = make_waiter(clock, first_delay=0.25)
    assert waiter.wait(ready_after(clock, 0.2, polls), SETS, waiting.Deadline(clock, 10),
                       "snapshot s", changed=True) == "available"
    assert polls == [0.25]
    # A wait that does not follow a change looks at once.
    polls.clear()
    assert waiter.wait(ready_after(clock, 0, polls), SETS, waiting.Deadline(clock, 10),
                       "share x") == "available"
    assert polls == [clock.now()] and clock.sleeps == [0.25]


def test_retry_repeats_a_retryable_call_until_the_attempts_run_out():
    clock = VirtualClock()
    calls = []

    def flaky():
        calls.append(clock.now())
        if len(calls) < 3:
            raise exception.ManilaUnavailable("HTTP 503")
        return "done"

    waiter = make_waiter(clock)
    assert waiter.retry(flaky, waiting.Deadline(clock, 60), "read") == "done"
    assert len(calls) == 3 and calls[0] < calls[1] < calls[2]
    calls.clear()
    with pytest.raises(exception.ManilaUnavailable):
        waiter.retry(flaky, waiting.Deadline(clock, 60), "create", attempts=2)
    assert len(calls) == 2

    def refused():
        calls.append(clock.now())
        raise exception.InvalidRequest("400")

    calls.clear()
    with pytest.raises(exception.InvalidRequest):
        waiter.retry(refused, waiting.Deadline(clock, 60), "create")
    assert len(calls) == 1


@pytest.mark.parametrize("kwargs", [
    {"initial_interval": 0}, {"backoff_factor": 0.9}, {"jitter": 1.0},
    {"initial_interval": 2, "max_interval": 1}, {"first_delay": -1},
])
def test_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        waiting.WaitPolicy(**kwargs)


def test_a_long_wait_logs_an_info_line_every_minute_with_status_and_deadline(caplog):
    clock = VirtualClock()
    polls = []
    caplog.set_level(logging.INFO, logger="manila_protector.plugins.waiting")
    status = make_waiter(clock).wait(ready_after(clock, 200.0, polls), SETS,
                                     waiting.Deadline(clock, 600), "snapshot s")
    assert status == "available"
    lines = [(r.created, r.getMessage()) for r in caplog.records if r.levelno == logging.INFO]
    assert [message for _, message in lines] == [
        "snapshot s: still waiting after 60s, last seen 'creating'; deadline in 540s",
        "snapshot s: still waiting after 120s, last seen 'creating'; deadline in 480s",
        "snapshot s: still waiting after 180s, last seen 'creating'; deadline in 420s",
    ]
    # Lines come between polls: the polls are those of the backoff alone.
    unlogged = VirtualClock()
    other = []
    make_waiter(unlogged).wait(ready_after(unlogged, 200.0, other), SETS,
                               waiting.Deadline(unlogged, 600), "snapshot s")
    assert polls == other


def test_a_short_wait_logs_nothing_at_info(caplog):
    clock = VirtualClock()
    caplog.set_level(logging.INFO, logger="manila_protector.plugins.waiting")
    make_waiter(clock).wait(ready_after(clock, 40.0, []), SETS, waiting.Deadline(clock, 600),
                            "snapshot s")
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_an_unreachable_manila_is_named_in_the_minute_line(caplog):
    clock = VirtualClock()
    caplog.set_level(logging.INFO, logger="manila_protector.plugins.waiting")

    def fetch():
        raise exception.ManilaUnavailable("503 from Manila")

    with pytest.raises(exception.DeadlineExceeded):
        make_waiter(clock).wait(fetch, SETS, waiting.Deadline(clock, 90), "snapshot s")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "snapshot s: still waiting after 60s, Manila unreachable (manila_unavailable); "
        "deadline in 30s"]


def test_every_poll_of_a_wait_is_reported_to_its_tick():
    clock = VirtualClock()
    polls, ticks = [], []
    make_waiter(clock).wait(ready_after(clock, 30.0, polls), SETS, waiting.Deadline(clock, 100),
                            "snapshot s",
                            tick=lambda status, elapsed, left: ticks.append((status, elapsed,
                                                                             left)))
    # Every poll but the last (which ended the wait) is heard, with time waited and left.
    assert [t[1] for t in ticks] == polls[:-1]
    assert all(status == "creating" and elapsed + left == 100 for status, elapsed, left in ticks)


# -- learning what a change usually takes -------------------------------------------------


def change_done_after(clock, seconds, polls):
    """A change requested now, done ``seconds`` later; each poll's time since the request."""
    requested = clock.now()

    def fetch():
        polls.append(clock.now() - requested)
        return "available" if clock.now() - requested >= seconds else "creating"
    return fetch


def learning_waiter(clock, expected, **policy):
    return waiting.Waiter(waiting.WaitPolicy(**policy), clock, random.Random(7),
                          expected=expected)


def learnt_from(durations, **policy):
    """A waiter (its clock, its Expected) that has waited for changes of these durations."""
    clock = VirtualClock()
    expected = waiting.Expected()
    waiter = learning_waiter(clock, expected, **policy)
    run_changes(clock, waiter, durations)
    return clock, expected, waiter


def run_changes(clock, waiter, durations):
    """One wait per duration, each after a change; per wait, the polls' times."""
    every = []
    for seconds in durations:
        polls = []
        waiter.wait(change_done_after(clock, seconds, polls), SETS,
                    waiting.Deadline(clock, 600), "snapshot s", changed=True)
        every.append(polls)
    return every


def test_waits_after_a_change_learn_to_poll_when_such_a_change_is_done():
    clock = VirtualClock()
    expected = waiting.Expected()
    waits = run_changes(clock, learning_waiter(clock, expected), [1.0] * 60)
    first, learnt = waits[0], waits[-20:]
    # Without anything learnt: polls from the start, seen about a quarter late.
    assert first[0] == 0.0 and first[-1] > 1.15
    # Learnt: the change is seen soon after it is done, with fewer requests.
    lateness = [polls[-1] - 1.0 for polls in learnt]
    assert all(late >= 0 for late in lateness)
    assert sum(lateness) / len(lateness) < 0.06
    assert max(len(polls) for polls in learnt) < len(first)
    assert 1.0 <= expected.at(SETS) < 1.12


def test_the_learnt_time_follows_changes_getting_slower_and_faster():
    clock, expected, waiter = learnt_from([1.0] * 40)
    run_changes(clock, waiter, [4.0] * 40)
    assert 4.0 <= expected.at(SETS) < 4.5
    run_changes(clock, waiter, [2.0] * 120)
    assert 2.0 <= expected.at(SETS) < 2.3
    # Much faster at once: followed within a few waits (each halves it), not a hundred.
    run_changes(clock, waiter, [0.3] * 3)
    assert expected.at(SETS) < 0.6


@pytest.mark.parametrize("ready_at", [2.0, 30.0, 600.0])
def test_a_change_slower_than_learnt_is_still_seen_within_the_geometric_bound(ready_at):
    clock, expected, waiter = learnt_from([1.0] * 30)
    [polls] = run_changes(clock, waiter, [ready_at])
    assert ready_at <= polls[-1] <= 1.25 * ready_at + 0.25


def test_a_change_faster_than_learnt_is_seen_by_half_the_learnt_time_at_most():
    clock, expected, waiter = learnt_from([10.0] * 30)
    learnt = expected.at(SETS)
    [polls] = run_changes(clock, waiter, [0.5])
    assert polls == [pytest.approx(learnt / 2)]


def test_the_first_poll_never_waits_longer_than_the_longest_interval():
    clock, expected, waiter = learnt_from([120.0] * 3, max_interval=5.0)
    [polls] = run_changes(clock, waiter, [1.0])
    assert polls == [pytest.approx(5.0)]


def test_waits_without_a_change_neither_learn_nor_wait_for_the_first_poll():
    clock, expected, waiter = learnt_from([3.0] * 10)
    learnt = expected.at(SETS)
    polls = []
    waiter.wait(change_done_after(clock, 0.0, polls), SETS, waiting.Deadline(clock, 60),
                "snapshot s")
    assert polls == [0.0]
    assert expected.at(SETS) == learnt


def test_each_kind_of_change_learns_its_own_time():
    clock = VirtualClock()
    expected = waiting.Expected()
    waiter = learning_waiter(clock, expected)
    other = statuses.StatusSets(ready=frozenset({"available"}),
                                pending=frozenset({"creating", "reverting"}))
    run_changes(clock, waiter, [1.0] * 20)
    assert expected.at(other) is None
    polls = []
    waiter.wait(change_done_after(clock, 8.0, polls), other, waiting.Deadline(clock, 60),
                "share s", changed=True)
    assert polls[0] == 0.0
    assert expected.at(other) > 6.0 and expected.at(SETS) < 1.2


def test_time_spent_since_the_change_counts_as_waited():
    clock = VirtualClock()
    waiter = make_waiter(clock, first_delay=2.0)
    requested = clock.now()
    clock.sleep(0.5)  # another request, made while Manila works
    polls = []
    waiter.wait(change_done_after(clock, 0.0, polls), SETS, waiting.Deadline(clock, 60),
                "snapshot s", changed=True, since=requested)
    assert clock.now() == pytest.approx(2.0)
