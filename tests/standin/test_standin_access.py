"""Access rules: allow/deny transitions, legacy list (<= 2.44), rules API (>= 2.45)."""

from __future__ import annotations

import pytest
from manilaclient import exceptions


@pytest.fixture
def share(standin, project_id):
    return standin.create_share(project_id)


def test_allow_queues_then_applies_and_the_share_syncs(standin, client, share, clock):
    standin.config.delays.access_apply = 4
    rule = client.shares.allow(share["id"], "ip", "10.0.0.1", "ro")
    assert rule["state"] == "queued_to_apply"
    assert (rule["share_id"], rule["access_level"], rule["access_to"]) == (
        share["id"], "ro", "10.0.0.1"
    )
    assert client.shares.get(share["id"]).access_rules_status == "syncing"
    clock.advance(2)
    assert client.share_access_rules.get(rule["id"]).state == "applying"
    clock.advance(2)
    assert client.share_access_rules.get(rule["id"]).state == "active"
    assert client.shares.get(share["id"]).access_rules_status == "active"


def test_allow_answer_has_manila_rule_fields(client, share):
    rule = client.shares.allow(share["id"], "ip", "10.0.0.2", "rw", metadata={"k": "v"})
    assert set(rule) >= {
        "id", "share_id", "access_type", "access_to", "access_level", "state",
        "access_key", "created_at", "updated_at", "metadata",
    }
    assert rule["metadata"] == {"k": "v"}


def test_duplicate_rule_is_a_bad_request(client, share):
    client.shares.allow(share["id"], "ip", "10.0.0.1", "rw")
    with pytest.raises(exceptions.BadRequest) as raised:
        client.shares.allow(share["id"], "ip", "10.0.0.1", "ro")
    assert "exists" in raised.value.message


def test_invalid_ip_and_level_are_bad_requests(http, share):
    for access in ({"access_type": "ip", "access_to": "not-an-ip"},
                   {"access_type": "ip", "access_to": "10.0.0.1", "access_level": "rx"}):
        answer = http(
            "POST", f"/v2/shares/{share['id']}/action", version="2.98",
            json={"allow_access": access},
        )
        assert answer.status_code == 400


def test_deny_removes_the_rule_after_the_delay(standin, client, share, clock):
    rule = client.shares.allow(share["id"], "ip", "10.0.0.1", "rw")
    standin.config.delays.access_apply = 6
    client.shares.deny(share["id"], rule["id"])
    assert client.share_access_rules.get(rule["id"]).state == "queued_to_deny"
    assert client.shares.get(share["id"]).access_rules_status == "syncing"
    clock.advance(6)
    assert client.share_access_rules.access_list(share["id"]) == []
    with pytest.raises(exceptions.NotFound):
        client.share_access_rules.get(rule["id"])


def test_deny_of_unknown_rule_is_not_found(client, share):
    with pytest.raises(exceptions.NotFound):
        client.shares.deny(share["id"], "no-such-rule")


def test_legacy_access_list_action_works_up_to_2_44(standin, make_client, share, project_id):
    old = make_client(f"user1:{project_id}", version="2.44")
    old.shares.allow(share["id"], "ip", "10.0.0.9", "rw")
    (rule,) = old.shares.access_list(share["id"])
    assert (rule.access_to, rule.state) == ("10.0.0.9", "active")


def test_legacy_access_list_action_is_not_found_at_2_45(http, share):
    answer = http(
        "POST", f"/v2/shares/{share['id']}/action", version="2.45",
        json={"access_list": None},
    )
    assert answer.status_code == 404


def test_rules_api_lists_rules_from_2_45(client, share):
    client.shares.allow(share["id"], "ip", "10.0.0.1", "rw")
    client.shares.allow(share["id"], "user", "alice", "ro")
    listed = client.share_access_rules.access_list(share["id"])
    assert sorted(r.access_to for r in listed) == ["10.0.0.1", "alice"]


def test_rules_api_is_not_found_below_2_45(http, share):
    answer = http("GET", f"/v2/share-access-rules?share_id={share['id']}", version="2.44")
    assert answer.status_code == 404


def test_rules_api_needs_a_share_id(http):
    answer = http("GET", "/v2/share-access-rules", version="2.45")
    assert answer.status_code == 400


def test_rule_metadata_set_get_and_unset(client, share):
    rule = client.shares.allow(share["id"], "ip", "10.0.0.1", "rw")
    client.share_access_rules.set_metadata(rule["id"], {"owner": "me"})
    assert client.share_access_rules.get(rule["id"]).metadata == {"owner": "me"}
    client.share_access_rules.unset_metadata(rule["id"], ["owner"])
    assert client.share_access_rules.get(rule["id"]).metadata == {}


def test_rules_created_directly_are_listed_active(standin, client, project_id):
    share = standin.create_share(
        project_id, access_rules=[("ip", "10.1.1.1"), {"access_type": "user",
                                                       "access_to": "bob",
                                                       "access_level": "ro"}]
    )
    rules = client.share_access_rules.access_list(share["id"])
    assert {(r.access_to, r.access_level, r.state) for r in rules} == {
        ("10.1.1.1", "rw", "active"), ("bob", "ro", "active")
    }
    assert [r["access_to"] for r in standin.access_rules(share["id"])] == ["10.1.1.1", "bob"]


def test_allow_on_a_share_being_deleted_is_a_bad_request(standin, client, project_id):
    standin.config.delays.share_delete = 5
    share = standin.create_share(project_id)
    client.shares.delete(share["id"])
    with pytest.raises(exceptions.BadRequest):
        client.shares.allow(share["id"], "ip", "10.0.0.1", "rw")
