"""Job requests: the envelope of every RPC request is checked before anything happens."""

import uuid

import pytest

from manila_protector import exception
from manila_protector import jobs

SHARE = "3f1c2a9e-5b7d-4c1e-9a0b-1234567890ab"
SAVED = {"snapshot_id": "s", "share_id": SHARE, "size": 1, "share_proto": "NFS"}


def build(**overrides):
    args = dict(job_id=str(uuid.uuid4()), operation="protect", share_id=SHARE,
                parameters={}, saved_info=None, max_bytes=1000)
    args.update(overrides)
    return jobs.JobRequest.build(**args)


def test_job_id_is_canonicalised():
    job_id = uuid.uuid4()
    assert build(job_id=str(job_id).upper()).job_id == str(job_id)


@pytest.mark.parametrize("overrides,field,rule", [
    ({"job_id": "not-a-uuid"}, "job_id", "uuid"),
    ({"job_id": 12}, "job_id", "uuid"),
    ({"job_id": None}, "job_id", "uuid"),
    ({"job_id": "x" * 10_000}, "job_id", "uuid"),
    ({"operation": "explode"}, "operation", "enum"),
    ({"operation": None}, "operation", "enum"),
    ({"share_id": ""}, "share_id", "uuid"),
    ({"share_id": "../../etc/passwd"}, "share_id", "uuid"),
    ({"share_id": f"../shares/{SHARE}"}, "share_id", "uuid"),
    ({"share_id": "share-1"}, "share_id", "uuid"),
    ({"share_id": 5}, "share_id", "uuid"),
    ({"share_id": "a" * 300}, "share_id", "uuid"),
    ({"parameters": ["x"]}, "parameters", "type"),
    ({"parameters": {"x": "y" * 2000}}, "parameters", "max_bytes"),
    ({"operation": "restore"}, "saved_info", "type"),
    ({"operation": "delete", "saved_info": {**SAVED, "share_id": "other"}},
     "saved_info.share_id", "matches_share_id"),
])
def test_bad_envelopes_are_typed_errors(overrides, field, rule):
    with pytest.raises(exception.InvalidRequest) as info:
        build(**overrides)
    assert info.value.details == {"field": field, "rule": rule}
    assert len(str(info.value)) < 300


def test_share_ids_are_canonical_uuids():
    assert build(share_id=SHARE.upper()).share_id == SHARE


@pytest.mark.parametrize("value", ["job\nCRITICAL forged line", "\x1b[31mred", 42, None])
def test_caller_values_are_shown_escaped_and_short(value):
    text = jobs.shown(value)
    assert "\n" not in text and "\x1b" not in text and len(text) <= 70


def test_protect_ignores_saved_info():
    assert build(saved_info=SAVED).saved_info is None


def test_restore_keeps_saved_info():
    assert build(operation="restore", saved_info=SAVED).saved_info == SAVED
