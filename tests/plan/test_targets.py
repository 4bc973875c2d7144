"""Which Facebook audiences a configured audience becomes, and their schemas."""

from audiencesync.config import AudienceSettings
from audiencesync.load.uploader import to_wire
from audiencesync.plan.targets import targets


def audience(**over) -> AudienceSettings:
    base = {"name": "VIP customers", "source": "crm", "query": "select 1", "customer_file_source": "USER_PROVIDED_ONLY"}
    return AudienceSettings(**{**base, **over})


AVAILABLE = {"EMAIL", "PHONE", "MADID", "EXTERN_ID", "FN", "LN", "CT", "ZIP", "LOOKALIKE_VALUE"}


def test_per_identity_names_follow_mparticle():
    names = [t.name for t in targets(audience(forward=["email", "phone", "mobile_ad_id", "facebook_id"]), AVAILABLE)]
    assert names == [
        "VIP customers (email)",
        "VIP customers (phone)",
        "VIP customers (IDFA/GAID)",
        "VIP customers (fb id)",
    ]


def test_single_key_schemas_and_multi_key_row():
    ts = {t.kind: t for t in targets(audience(forward=["email", "mobile_ad_id"], multi_key=True), AVAILABLE)}
    assert ts["email"].schema == "EMAIL_SHA256" and not ts["email"].multi
    assert ts["mobile_ad_id"].schema == "MOBILE_ADVERTISER_ID"
    assert ts["multi"].schema == ["EXTERN_ID", "EMAIL", "PHONE", "MADID"]


def test_attributes_only_when_asked():
    with_attrs = targets(audience(multi_key=True, match_on_attributes=True), AVAILABLE)[0]
    assert with_attrs.schema == ["EXTERN_ID", "EMAIL", "PHONE", "MADID", "FN", "LN", "CT", "ZIP"]
    assert with_attrs.required_any == ("EXTERN_ID", "EMAIL", "PHONE", "MADID")


def test_value_and_ldu_make_rows_multi_key():
    t = targets(audience(forward=["email"], value={"column": "ltv"}, ldu=True), AVAILABLE)[0]
    assert t.multi and t.schema == [
        "EMAIL",
        "LOOKALIKE_VALUE",
        "DATA_PROCESSING_OPTIONS",
        "DATA_PROCESSING_OPTIONS_COUNTRY",
        "DATA_PROCESSING_OPTIONS_STATE",
    ]
    schema, rows = to_wire(t.schema_text, [["a" * 64, "12.5", "LDU", "0", "0"]])
    assert schema == t.schema and rows == [["a" * 64, 12.5, ["LDU"], 0, 0]]


def test_single_key_rows_go_flat_on_the_wire():
    schema, rows = to_wire("EMAIL_SHA256", [["a" * 64], ["b" * 64]])
    assert schema == "EMAIL_SHA256" and rows == ["a" * 64, "b" * 64]
    schema, rows = to_wire('["EMAIL"]', [["a" * 64]])
    assert schema == ["EMAIL"] and rows == [["a" * 64]]
