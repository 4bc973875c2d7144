"""Refuse the plans a broken export produces: an empty source, or most of an audience removed.

A mirror sync does what the source says, so a header-only CSV or a primary key that reads all
NULL would empty every audience, with exit 0. The guard looks at the plan before anything is
sent and refuses the whole configured audience with a sentence naming the numbers and the way to
go ahead anyway (`--force` for one run, or the `guard:` setting).
"""

from __future__ import annotations

from collections.abc import Callable

from audiencesync.config import GuardSettings
from audiencesync.plan.planner import Plan, TargetPlan


def refusal(plan: Plan, guard: GuardSettings, held: Callable[[str], int]) -> str | None:
    """Why this plan must not run, or None. `held(fb_id)` is how many rows the state says
    Facebook holds for that audience."""
    holding = [(tp, held(tp.existing.fb_id)) for tp in plan.targets if tp.existing is not None]
    if plan.members == 0 and not guard.allow_empty:
        return _empty(plan, max((n for _, n in holding), default=0))
    if plan.mode == "upsert" and not plan.full:
        return None
    for tp, n in holding:
        if n and tp.removes / n > guard.max_remove_share:
            return _too_many(plan, tp, n, guard.max_remove_share)
    return None


def _empty(plan: Plan, held: int) -> str:
    pk = plan.audience.primary_key
    why = f"{plan.rows_read:,} rows read"
    if plan.rows_without_pk:
        why += f", {plan.rows_without_pk:,} of them without a primary key ({pk!r} is NULL or empty)"
    effect = (
        f"a {plan.mode} sync would remove all {held:,} members Facebook holds"
        if held and plan.mode != "upsert"
        else "nothing would be sent"
    )
    return (
        f"{plan.audience.name}: the source returned no members ({why}); {effect}. Nothing was sent. "
        "If the audience really is empty now, run again with --force (or set guard.allow_empty: true)."
    )


def _too_many(plan: Plan, tp: TargetPlan, held: int, share: float) -> str:
    name = tp.existing.name if tp.existing else tp.target.name
    return (
        f"{plan.audience.name}: this run would remove {tp.removes:,} of the {held:,} members of {name!r} "
        f"({tp.removes / held:.0%}), more than guard.max_remove_share ({share:.0%}) allows; the source has "
        f"{plan.members:,} members ({plan.deleted:,} left since the last run). Nothing was sent. "
        "If the source is right, run again with --force (or raise guard.max_remove_share)."
    )
