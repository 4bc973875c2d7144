"""Create, find and delete the Facebook audiences behind a configured audience.

A run can die between Facebook creating an audience and the state recording its id; the next run
would then create a twin. Each audience we create carries a marker in its description, so a
missing id is first looked for on Facebook before anything is created.
"""

from __future__ import annotations

from audiencesync.config import AudienceSettings
from audiencesync.load.graph import GraphClient, GraphError
from audiencesync.plan.targets import Target
from audiencesync.state.store import StateStore


def marker(audience_key: str, kind: str) -> str:
    return f"[audiencesync {audience_key}/{kind}]"


def adopt_audiences(client: GraphClient, store: StateStore, audience: AudienceSettings, targets: list[Target]) -> int:
    """Record the Facebook audiences that carry our marker but that the state does not know (the
    state file was lost, another machine created them, or a run died between creating and
    recording). Their members are unknown, so they are marked to be replaced whole. Returns how
    many were adopted."""
    missing = [t for t in targets if store.facebook_audience(audience.key, t.kind) is None]
    if not missing:
        return 0
    listed = list(client.list_custom_audiences(["id", "name", "description"]))
    adopted = 0
    for t in missing:
        tag = marker(audience.key, t.kind)
        found = next((ca for ca in listed if tag in (ca.get("description") or "")), None)
        if found is None:
            continue
        store.record_facebook_audience(
            audience.key,
            t.kind,
            str(found["id"]),
            str(found.get("name") or t.name),
            "multi" if t.multi else "single",
            t.value_based,
            contents_unknown=True,
        )
        adopted += 1
    return adopted


def ensure_audience(client: GraphClient, store: StateStore, audience: AudienceSettings, target: Target) -> str:
    """The Facebook id for the target, creating the audience (subtype CUSTOM) if it does not exist.

    `adopt_audiences` ran first, so a missing id means no audience with our marker exists."""
    found = store.facebook_audience(audience.key, target.kind)
    if found:
        return found.fb_id
    tag = marker(audience.key, target.kind)
    description = f"{audience.description} {tag}" if audience.description else tag
    fb_id = client.create_custom_audience(
        name=target.name,
        customer_file_source=audience.customer_file_source,
        description=description,
        is_value_based=target.value_based,
    )
    store.record_facebook_audience(
        audience.key, target.kind, fb_id, target.name, "multi" if target.multi else "single", target.value_based
    )
    return fb_id


def delete_audience(client: GraphClient, store: StateStore, audience_key: str) -> list[tuple[str, str, str | None]]:
    """Delete every Facebook audience of a configured one; (name, id, problem) for each."""
    results: list[tuple[str, str, str | None]] = []
    for fb in store.facebook_audiences(audience_key):
        try:
            client.delete_node(fb.fb_id)
        except GraphError as e:
            if e.code == 100 and e.subcode == 33:
                results.append((fb.name, fb.fb_id, None))
                store.forget_facebook_audience(audience_key, fb.kind)
                continue
            results.append((fb.name, fb.fb_id, e.explain()))
            continue
        store.forget_facebook_audience(audience_key, fb.kind)
        results.append((fb.name, fb.fb_id, None))
    if all(problem is None for _, _, problem in results):
        store.forget_audience(audience_key)
    return results
