"""Schemas: the spec's properties, string booleans, typed errors naming field and rule."""

import pytest

from manila_protector import exception
from manila_protector.plugins import schemas
from manila_protector.plugins import values

GOOD = {"snapshot_name": "nightly", "description": "d", "force": False}


def test_options_schema_keeps_the_spec_properties():
    props = schemas.OPTIONS_SCHEMA["properties"]
    assert schemas.OPTIONS_SCHEMA["title"] == "Share Protection Options"
    assert schemas.OPTIONS_SCHEMA["required"] == ["snapshot_name", "description", "force"]
    assert props["force"] == {
        "type": "boolean", "title": "Force",
        "description": "Optional flag to indicate whether to snapshot a share even if it's busy.",
        "default": False,
    }
    assert props["snapshot_name"]["title"] == "Snapshot Name"
    assert props["description"]["type"] == "string"


def test_restore_schema_keeps_the_spec_properties():
    props = schemas.RESTORE_SCHEMA["properties"]
    assert schemas.RESTORE_SCHEMA["title"] == "Share Protection Restore"
    assert "required" not in schemas.RESTORE_SCHEMA
    assert props["share_id"]["title"] == "Share ID"
    assert props["restore_name"]["default"] is None
    assert props["restore_description"]["default"] is None


@pytest.mark.parametrize("value,expected", [
    ("False", False), ("false", False), ("True", True), ("true", True), ("1", True), ("0", False),
    (True, True), (False, False),
])
def test_string_booleans_from_karbor_are_accepted(value, expected):
    options = values.ProtectOptions.from_parameters({**GOOD, "force": value})
    assert options.force is expected


@pytest.mark.parametrize("params,field,rule", [
    ({"description": "d", "force": False}, "parameters.snapshot_name", "required"),
    ({"snapshot_name": "n", "force": False}, "parameters.description", "required"),
    ({"snapshot_name": "n", "description": "d"}, "parameters.force", "required"),
    ({**GOOD, "force": "maybe"}, "parameters.force", "type"),
    ({**GOOD, "force": 3}, "parameters.force", "type"),
    ({**GOOD, "snapshot_name": 5}, "parameters.snapshot_name", "type"),
    ({**GOOD, "description": ["x"]}, "parameters.description", "type"),
    ({**GOOD, "snapshot_nmae": "typo"}, "parameters.snapshot_nmae", "additionalProperties"),
])
def test_protect_option_violations_name_field_and_rule(params, field, rule):
    with pytest.raises(exception.InvalidRequest) as info:
        values.ProtectOptions.from_parameters(params)
    assert info.value.details["field"] == field
    assert info.value.details["rule"] == rule
    assert field in str(info.value)
    assert info.value.code == "invalid_request"
    assert not info.value.retryable


@pytest.mark.parametrize("params", ["text", ["a"], 7])
def test_parameters_that_are_not_an_object_are_refused(params):
    with pytest.raises(exception.InvalidRequest) as info:
        values.ProtectOptions.from_parameters(params)
    assert info.value.details == {"field": "parameters", "rule": "type"}


@pytest.mark.parametrize("params,field", [
    ({"share_id": 5}, "parameters.share_id"),
    ({"restore_name": {"a": 1}}, "parameters.restore_name"),
    ({"restore_access_rules": "perhaps"}, "parameters.restore_access_rules"),
    ({"unknown": "x"}, "parameters.unknown"),
])
def test_restore_option_violations(params, field):
    with pytest.raises(exception.InvalidRequest) as info:
        values.RestoreOptions.from_parameters(params)
    assert info.value.details["field"] == field


def test_restore_defaults_of_none_mean_not_given():
    options = values.RestoreOptions.from_parameters(
        {"restore_name": None, "restore_description": None, "restore_access_rules": "False"})
    assert options == values.RestoreOptions(None, None, None, False)


SAVED = {"snapshot_id": "0c6b4b8e-5f4a-4d9e-8a55-2f1c3b7d9e01",
         "share_id": "7e2a9c1d-3b4f-4e6a-9d8c-5a1b2c3d4e5f", "size": 1, "share_proto": "NFS"}


@pytest.mark.parametrize("mutation,field", [
    ({"snapshot_id": None}, "saved_info.snapshot_id"),
    # Ids reach Manila's URLs: "../shares/<id>" would be normalised into another path.
    ({"snapshot_id": "../shares/7e2a9c1d-3b4f-4e6a-9d8c-5a1b2c3d4e5f"},
     "saved_info.snapshot_id"),
    ({"share_id": "sh1"}, "saved_info.share_id"),
    ({"size": "big"}, "saved_info.size"),
    ({"size": 0}, "saved_info.size"),
    ({"share_proto": ""}, "saved_info.share_proto"),
    ({"metadata": {"k": 1}}, "saved_info.metadata.k"),
    ({"access_rules": [{"access_type": "ip"}]}, "saved_info.access_rules.0.access_to"),
    ({"access_rules": [{"access_type": "ip", "access_to": "10.0.0.1", "access_level": "all"}]},
     "saved_info.access_rules.0.access_level"),
])
def test_saved_info_violations(mutation, field):
    data = {**SAVED, **mutation}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(exception.InvalidRequest) as info:
        values.SavedInfo.from_dict(data)
    assert info.value.details["field"] == field


def test_saved_info_round_trips():
    data = {**SAVED, "metadata": {"a": "b"}, "share_type": "t", "access_rules": [
        {"access_type": "ip", "access_to": "10.0.0.0/24", "access_level": "rw", "metadata": {}}]}
    saved = values.SavedInfo.from_dict(data)
    assert values.SavedInfo.from_dict(saved.to_dict()) == saved
    assert saved.to_dict()["access_rules"][0]["access_to"] == "10.0.0.0/24"


def test_huge_values_do_not_make_huge_error_messages():
    with pytest.raises(exception.InvalidRequest) as info:
        values.ProtectOptions.from_parameters({**GOOD, "force": "x" * 1_000_000})
    assert len(str(info.value)) < 400


def test_every_violation_is_listed_in_details():
    with pytest.raises(exception.InvalidRequest) as info:
        values.ProtectOptions.from_parameters({"force": "maybe"})
    fields = {v["field"] for v in info.value.details["all"]}
    assert fields == {"parameters.snapshot_name", "parameters.description", "parameters.force"}
