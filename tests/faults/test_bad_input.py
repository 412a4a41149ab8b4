"""Bad input over RPC: generated requests (hypothesis), each with at least one defect.

Every reply is a typed error -- one of ``manila_protector.exception``'s, rebuilt by the
caller's transport, or oslo.messaging's dispatcher refusal (``NoSuchMethod``,
``UnsupportedVersion``) for an unknown method or version; no request reaches Manila
with a mutation; the worker process never exits; a good job still succeeds after.

The requests are sent as raw RPC messages (the transport's ``_send``), so that any
argument name can be sent -- also ``ctxt`` or ``self``, which ``RPCClient.call``
itself cannot carry.
"""

from __future__ import annotations

import collections
import re
import typing
import uuid

import hypothesis
from hypothesis import strategies as st
import oslo_messaging
import pytest

from manila_protector import exception
from manila_protector.rpc import contract

from faults import outcomes

# The full size (MANILA_PROTECTOR_FAULTS=full) outlasts the suite-wide 300 s timeout.
pytestmark = [pytest.mark.functional, pytest.mark.faults, pytest.mark.timeout(1800)]

SHARE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$")
#: ``[worker] max_request_bytes`` (default 256 KiB): strings past it are "huge".
HUGE = 300 * 1024
DISPATCHER_REFUSALS = frozenset({"NoSuchMethod", "UnsupportedVersion"})
JOB_METHODS = ("protect", "restore", "delete", "verify")
#: What each method accepts besides ``ctxt`` (``wait`` only for the job methods).
SIGNATURES = {
    "protect": {"job_id", "share_id", "parameters", "wait"},
    "restore": {"job_id", "share_id", "saved_info", "parameters", "wait"},
    "delete": {"job_id", "share_id", "saved_info", "wait"},
    "verify": {"job_id", "share_id", "saved_info", "wait"},
    "get_job": {"job_id"},
    "show_resource": {"share_id"},
    "list_dependent_resources": {"parent_type", "parent_id"},
    "list_resources": set(),
}


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


# -- values ------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)
huge_strings = st.sampled_from(["x", "é", "\u202e", "\\", "%s", "A" * 7]).map(
    lambda piece: (piece * (HUGE // len(piece.encode()) + 1)))
non_strings = json_values.filter(lambda v: not isinstance(v, str))
non_dicts = json_values.filter(lambda v: not isinstance(v, dict))
#: Neither a boolean nor a string the schemas read as one (``"true"``, ``"0"``...).
non_booleans = json_values.filter(
    lambda v: not isinstance(v, bool) and v is not None
    and not (isinstance(v, str) and v.strip().lower() in
             {"true", "1", "yes", "on", "false", "0", "no", "off"}))
bad_job_ids = st.one_of(non_strings.filter(lambda v: v is not None),
                        st.text(max_size=80).filter(lambda s: not is_uuid(s)), huge_strings)
bad_share_ids = st.one_of(non_strings.filter(lambda v: v is not None),
                          st.text(max_size=300).filter(lambda s: not SHARE_ID.match(s)),
                          huge_strings)
junk_names = st.one_of(st.sampled_from(["ctxt", "self", "method", "args", "kwargs",
                                         "unexpected", "operation", "__class__"]),
                       st.text(min_size=1, max_size=30))


def good_saved_info(share_id: str) -> dict[str, typing.Any]:
    return {"snapshot_id": str(uuid.uuid4()), "share_id": share_id, "size": 1,
            "share_proto": "NFS", "share_type": None, "share_network_id": None,
            "availability_zone": "nova", "metadata": {}, "access_rules": [],
            "snapshot_name": "nightly", "created_at": None, "job_tag": None}


def good_arguments(method: str) -> dict[str, typing.Any]:
    """A request that would be accepted (a defect is applied to it afterwards)."""
    share_id = str(uuid.uuid4())
    arguments: dict[str, typing.Any] = {"job_id": str(uuid.uuid4()), "share_id": share_id}
    if method == "protect":
        arguments["parameters"] = dict(outcomes.OPTIONS)
    elif method == "restore":
        arguments["saved_info"] = good_saved_info(share_id)
        arguments["parameters"] = {"restore_name": "r"}
    elif method in ("delete", "verify"):
        arguments["saved_info"] = good_saved_info(share_id)
    elif method == "get_job":
        arguments = {"job_id": str(uuid.uuid4())}
    elif method == "show_resource":
        arguments = {"share_id": share_id}
    elif method == "list_dependent_resources":
        arguments = {"parent_type": "OS::Keystone::Project", "parent_id": uuid.uuid4().hex}
    else:
        arguments = {}
    return arguments


# -- defects -------------------------------------------------------------------------------------

Defect = tuple[str, typing.Callable[[dict[str, typing.Any]], None]]


@st.composite
def defects(draw: st.DrawFn, method: str) -> Defect:
    """One change that makes a request of ``method`` invalid, and its name."""
    accepted = SIGNATURES[method]
    choices = ["extra argument"]
    if "job_id" in accepted:
        choices += ["bad job_id", "missing job_id"]
    if "share_id" in accepted:
        choices += ["bad share_id", "missing share_id"]
    if method == "protect":
        choices += ["parameters not an object", "bad protect parameter",
                    "unknown protect parameter", "missing protect parameter",
                    "huge description", "nested junk in parameters"]
    if method == "restore":
        choices += ["parameters not an object", "bad restore parameter",
                    "unknown restore parameter"]
    if "saved_info" in accepted:
        choices += ["saved_info not an object", "missing saved_info",
                    "saved_info without a required key", "saved_info with a bad value",
                    "saved_info of another share", "bad access rule in saved_info"]
    if "wait" in accepted:
        choices += ["wait not a boolean"]
    if method == "list_dependent_resources":
        choices += ["bad parent_type", "bad parent_id"]
    name = draw(st.sampled_from(choices))

    if name == "extra argument":
        key = draw(junk_names.filter(lambda k: k not in accepted))
        value = draw(json_values)
        return name, lambda a: a.__setitem__(key, value)
    if name.startswith("missing ") and name.split()[1] in ("job_id", "share_id",
                                                           "saved_info"):
        field = name.split()[1]
        return name, lambda a: a.pop(field, None)
    if name == "bad job_id":
        value = draw(bad_job_ids)
        return name, lambda a: a.__setitem__("job_id", value)
    if name == "bad share_id":
        value = draw(bad_share_ids)

        def set_share(a: dict[str, typing.Any]) -> None:
            a["share_id"] = value
            if isinstance(a.get("saved_info"), dict):
                a["saved_info"]["share_id"] = value
        return name, set_share
    if name == "parameters not an object":
        value = draw(non_dicts.filter(lambda v: v is not None))
        return name, lambda a: a.__setitem__("parameters", value)
    if name == "bad protect parameter":
        key = draw(st.sampled_from(["snapshot_name", "description", "force"]))
        value = draw(non_booleans if key == "force" else non_strings)
        return name, lambda a: a["parameters"].__setitem__(key, value)
    if name == "unknown protect parameter" or name == "unknown restore parameter":
        known = {"snapshot_name", "description", "force", "share_id", "restore_name",
                 "restore_description", "restore_access_rules"}
        key = draw(st.text(max_size=20).filter(lambda k: k not in known))
        value = draw(json_values.filter(lambda v: v is not None))
        return name, lambda a: a["parameters"].__setitem__(key, value)
    if name == "missing protect parameter":
        key = draw(st.sampled_from(["snapshot_name", "description"]))
        return name, lambda a: a["parameters"].pop(key)
    if name == "huge description":
        value = draw(huge_strings)
        return name, lambda a: a["parameters"].__setitem__("description", value)
    if name == "nested junk in parameters":
        value = draw(st.dictionaries(st.text(max_size=8), json_values, min_size=1,
                                     max_size=3))
        return name, lambda a: a["parameters"].__setitem__("nested", value)
    if name == "bad restore parameter":
        key = draw(st.sampled_from(["share_id", "restore_name", "restore_description",
                                    "restore_access_rules"]))
        value = draw((non_booleans if key == "restore_access_rules" else non_strings)
                     .filter(lambda v: v is not None))
        return name, lambda a: a["parameters"].__setitem__(key, value)
    if name == "saved_info not an object":
        value = draw(non_dicts)
        return name, lambda a: a.__setitem__("saved_info", value)
    if name == "saved_info without a required key":
        key = draw(st.sampled_from(["snapshot_id", "size", "share_proto"]))
        return name, lambda a: a["saved_info"].pop(key)
    if name == "saved_info with a bad value":
        key, bad = draw(st.sampled_from([
            ("snapshot_id", st.one_of(non_strings, st.just(""), huge_strings)),
            ("size", st.one_of(json_values.filter(
                lambda v: not isinstance(v, int) or isinstance(v, bool)),
                st.integers(max_value=0))),
            ("share_proto", st.one_of(non_strings, st.just(""))),
            ("metadata", st.one_of(non_dicts.filter(lambda v: v is not None),
                                   st.dictionaries(st.text(max_size=5), non_strings,
                                                   min_size=1, max_size=3))),
            ("access_rules", non_dicts.filter(lambda v: not isinstance(v, list)
                                              and v is not None)),
        ]))
        value = draw(bad)
        return name, lambda a: a["saved_info"].__setitem__(key, value)
    if name == "saved_info of another share":
        other = draw(st.one_of(st.uuids().map(str), json_values))
        return name, lambda a: a["saved_info"].__setitem__("share_id", other)
    if name == "bad access rule in saved_info":
        rule = draw(st.one_of(
            non_dicts,
            st.fixed_dictionaries({"access_type": st.just("ip"),
                                   "access_to": st.just("10.0.0.1"),
                                   "access_level": st.text(max_size=4).filter(
                                       lambda s: s not in ("rw", "ro"))}),
            st.dictionaries(st.sampled_from(["access_type", "access_to"]), st.text(),
                            max_size=1)))
        return name, lambda a: a["saved_info"].__setitem__("access_rules", [rule])
    if name == "wait not a boolean":
        value = draw(json_values.filter(lambda v: not isinstance(v, bool)))
        return name, lambda a: a.__setitem__("wait", value)
    if name == "bad parent_type":
        value = draw(json_values.filter(lambda v: v != "OS::Keystone::Project"))
        return name, lambda a: a.__setitem__("parent_type", value)
    value = draw(st.one_of(non_strings, st.just(""), huge_strings))  # bad parent_id
    return name, lambda a: a.__setitem__("parent_id", value)


class Request(typing.NamedTuple):
    method: str
    arguments: dict[str, typing.Any]
    namespace: str | None
    version: str
    what: str


@st.composite
def bad_requests(draw: st.DrawFn) -> Request:
    kind = draw(st.sampled_from(["arguments"] * 8 + ["method", "version"]))
    if kind == "method":
        method = draw(st.one_of(st.sampled_from(["_job", "_runner", "__init__", "target",
                                                 "submit", "wait", "PROTECT"]),
                                st.text(min_size=1, max_size=40)).filter(
            lambda m: m not in SIGNATURES))
        return Request(method, draw(st.dictionaries(junk_names, json_values, max_size=3)),
                       contract.NAMESPACE, contract.VERSION, "unknown method")
    method = draw(st.sampled_from(sorted(SIGNATURES)))
    arguments = good_arguments(method)
    if kind == "version":
        major, minor = (int(part) for part in contract.VERSION.split("."))
        namespace, version = draw(st.sampled_from([
            (contract.NAMESPACE, f"{major + 1}.0"), (contract.NAMESPACE, f"{major}.{minor + 1}"),
            (contract.NAMESPACE, "0.9"), ("karbor", "1.0"), (None, "1.0")]))
        return Request(method, arguments, namespace, version, "unsupported version")
    names = []
    for _ in range(draw(st.integers(1, 3))):
        name, apply = draw(defects(method))
        try:
            apply(arguments)
        except (KeyError, TypeError, AttributeError):
            continue  # it needs what an earlier defect removed or replaced
        names.append(name)
    if not names:  # every drawn defect needed something an earlier one removed
        arguments["unexpected"] = None
        names.append("extra argument")
    return Request(method, arguments, contract.NAMESPACE, contract.VERSION,
                   "; ".join(names))


def raw_call(transport: typing.Any, topic: str, ctxt: typing.Any, request: Request,
             timeout: float) -> typing.Any:
    """Send ``request`` as ``RPCClient.call`` would, but with any argument names."""
    message: dict[str, typing.Any] = {"method": request.method, "args": request.arguments,
                                      "version": request.version}
    if request.namespace is not None:
        message["namespace"] = request.namespace
    return transport._send(oslo_messaging.Target(topic=topic), ctxt.to_dict(), message,
                           wait_for_reply=True, timeout=timeout)


def classify(error: BaseException) -> str:
    """``typed:<code>``, ``dispatcher:<name>``, or ``untyped:<type>``."""
    if isinstance(error, exception.ProtectorError):
        return f"typed:{error.code}"
    if isinstance(error, oslo_messaging.RemoteError) and error.exc_type in DISPATCHER_REFUSALS:
        return f"dispatcher:{error.exc_type}"
    name = getattr(error, "exc_type", None) or type(error).__name__
    return f"untyped:{name}"


def test_bad_input_gets_typed_errors_and_never_reaches_manila_or_stops_the_worker(
        size, report, broker, names, make_standin, redis_server, workers, notifications,
        make_client, ctxt, project):
    standin = make_standin()
    share = standin.create_share(project, size=1)
    config = workers.configure(standin, redis_url=redis_server.url)
    worker = workers.start(config)
    outcome: collections.Counter[str] = collections.Counter()
    untyped: list[tuple[Request, str]] = []
    accepted: list[Request] = []
    kinds: collections.Counter[str] = collections.Counter()

    @hypothesis.settings(max_examples=size.bad_payloads, deadline=None, database=None,
                         derandomize=False, print_blob=True,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(request=bad_requests())
    def send(request: Request) -> None:
        kinds.update(request.what.split("; "))
        try:
            reply = raw_call(broker.transport, names.topic, ctxt, request, timeout=30)
        except Exception as error:  # noqa: BLE001 - classified and counted
            kind = classify(error)
            outcome[kind] += 1
            if kind.startswith("untyped"):
                untyped.append((request, f"{type(error).__name__}: {str(error)[:300]}"))
            return
        outcome["accepted"] += 1
        accepted.append(request)
        print("accepted:", repr(request)[:300], "->", repr(reply)[:200])

    send()
    alive_after = worker.running
    mutating = standin.count_requests(mutating=True)
    # A good job still succeeds.
    record = make_client().protect(ctxt, outcomes.new_id(), share["id"], outcomes.OPTIONS)
    assert worker.terminate(config.shutdown_timeout + 20) == 0

    row = report(f"bad input ({size.bad_payloads} generated requests)")
    for kind, count in sorted(outcome.items()):
        if not kind.startswith(("untyped", "accepted")):
            row.add(f"replies {kind}", count)
    row.add("replies that are not a typed error", sum(
        n for k, n in outcome.items() if k.startswith(("untyped", "accepted"))), 0)
    row.add("kinds of defect generated", len(kinds))
    row.add("worker crashes", int(not alive_after), 0)
    row.add("mutating requests that reached the stand-in", mutating, 0)
    row.add("a good job afterwards succeeded", record["status"] == "succeeded", True)
    print("defects generated:", dict(kinds.most_common()))
    for request, error in untyped[:5]:
        print("untyped:", error, "\n   for", repr(request)[:400])
    row.check()
