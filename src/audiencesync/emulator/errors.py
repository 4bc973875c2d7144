"""Graph API error types and the one place that renders Facebook's error envelope.

Why a module of its own: the model raises these errors without knowing anything
about HTTP, and the routing layer turns any of them into the exact JSON shape
Facebook sends (spec §3.1). Keeping the texts, codes and subcodes here means a
client test that matches on ``code``/``error_subcode`` is matching on the same
constants the emulator documents in ``docs/emulator.md``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

GRAPH_DOC = "https://developers.facebook.com/docs/graph-api"
RATE_LIMIT_DOC = "https://developers.facebook.com/docs/graph-api/overview/rate-limiting#custom-audience"

_TRACE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def new_trace_id() -> str:
    """An opaque 11-character id like Facebook's ``fbtrace_id`` / ``x-fb-trace-id``."""
    return "A" + "".join(secrets.choice(_TRACE_ALPHABET) for _ in range(10))


@dataclass
class GraphError(Exception):
    """One Graph API error. ``message`` is sent verbatim (it usually starts with ``(#code)``)."""

    code: int
    message: str
    type: str = "OAuthException"
    subcode: int | None = None
    user_title: str | None = None
    user_msg: str | None = None
    is_transient: bool = False
    http_status: int = 400
    error_data: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def envelope(self, fbtrace_id: str) -> dict[str, Any]:
        """The ``{"error": {...}}`` body, with optional keys only when they have a value."""
        err: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err["is_transient"] = self.is_transient
        if self.user_title is not None:
            err["error_user_title"] = self.user_title
        if self.user_msg is not None:
            err["error_user_msg"] = self.user_msg
        if self.error_data is not None:
            err["error_data"] = self.error_data
        err["fbtrace_id"] = fbtrace_id
        return {"error": err}


# ---------------------------------------------------------------- factories
# Each factory is one documented (or chosen, see docs/emulator.md) error.


def invalid_param(
    text: str = "Invalid parameter",
    *,
    subcode: int | None = None,
    title: str | None = None,
    msg: str | None = None,
) -> GraphError:
    """Code 100 with the usual ``(#100)`` prefix."""
    return GraphError(100, f"(#100) {text}", subcode=subcode, user_title=title, user_msg=msg)


def missing_params(*names: str) -> GraphError:
    return invalid_param(f"Missing parameter(s): {', '.join(names)}")


def unsupported_request(method: str, object_id: str) -> GraphError:
    """100/33: unknown, deleted or unreadable object, or a method the node does not support."""
    verb = method.lower()
    return GraphError(
        100,
        f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation. Please read the Graph API "
        f"documentation at {GRAPH_DOC}",
        type="GraphMethodException",
        subcode=33,
    )


def unknown_path(components: str) -> GraphError:
    return GraphError(2500, f"(#2500) Unknown path components: {components}")


def nonexisting_field(name: str, node_type: str) -> GraphError:
    return invalid_param(f"Tried accessing nonexisting field ({name}) on node type ({node_type})")


def deprecated_version(version: str, latest: str) -> GraphError:
    return GraphError(
        2635,
        f"(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version: {latest}.",
        user_title="Deprecated API version",
        user_msg=f"The API version {version} is unknown or no longer available. Use {latest}.",
    )


def missing_token() -> GraphError:
    return GraphError(104, "An access token is required to request this resource.")


def invalid_token() -> GraphError:
    return GraphError(190, "Invalid OAuth access token - Cannot parse access token")


def expired_token() -> GraphError:
    return GraphError(
        190,
        "Error validating access token: Session has expired.",
        subcode=463,
    )


def missing_proof() -> GraphError:
    return GraphError(100, "API calls from the server require an appsecret_proof argument", type="GraphMethodException")


def invalid_proof() -> GraphError:
    return GraphError(100, "Invalid appsecret_proof provided in the API argument", type="GraphMethodException")


def update_failed(
    detail: str | None = None,
    *,
    subcode: int | None = None,
    title: str | None = None,
    msg: str | None = None,
    is_transient: bool = False,
) -> GraphError:
    """2650 Failed to update the custom audience (data-source lock, replace subcodes)."""
    text = "(#2650) Failed to update the custom audience"
    if detail:
        text += f": {detail}"
    return GraphError(2650, text, subcode=subcode, user_title=title, user_msg=msg, is_transient=is_transient)


def create_failed(msg: str, *, subcode: int | None = None, title: str | None = None) -> GraphError:
    """2654 Failed to create custom audience."""
    return GraphError(
        2654,
        "(#2654) Failed to create custom audience",
        subcode=subcode,
        user_title=title or "Failed to create custom audience",
        user_msg=msg,
    )


def tos_not_accepted_on_create(account_id: str) -> GraphError:
    return GraphError(
        2663,
        "(#2663) Terms of service has not been accepted. To accept, go to "
        f"https://www.facebook.com/customaudiences/app/tos/?act={account_id}",
        user_title="Custom Audience Terms Not Accepted",
        user_msg="You need to accept the Custom Audience Terms before you can create or edit an audience.",
    )


def tos_not_accepted_on_upload(account_id: str) -> GraphError:
    return GraphError(
        200,
        "(#200) Permissions error",
        subcode=1870090,
        user_title="Custom Audience Terms Not Accepted",
        user_msg="You need to accept the Custom Audience Terms before you can add users to an audience. "
        f"Go to https://www.facebook.com/customaudiences/app/tos/?act={account_id}",
    )


def value_based_tos_not_accepted(account_id: str, *, upload: bool) -> GraphError:
    """Value-based audiences need the value-based terms too (spec §2.1); codes as for the CA terms."""
    text = (
        "You need to accept the Value-Based Custom Audience Terms before you can "
        + ("add users to a value-based audience. " if upload else "create or edit a value-based audience. ")
        + f"Go to https://www.facebook.com/customaudiences/app/tos/?act={account_id}"
    )
    if upload:
        return GraphError(
            200,
            "(#200) Permissions error",
            subcode=1870090,
            user_title="Custom Audience Terms Not Accepted",
            user_msg=text,
        )
    return GraphError(
        2663,
        "(#2663) Terms of service has not been accepted. To accept, go to "
        f"https://www.facebook.com/customaudiences/app/tos/?act={account_id}",
        user_title="Value-Based Custom Audience Terms Not Accepted",
        user_msg=text,
    )


def flagged_upload() -> GraphError:
    """100/1713230: users/usersreplace on an audience flagged for integrity (operation_status 471)."""
    return invalid_parameter_plain(
        1713230,
        "Audience Upload Blocked",
        "Before updating user memberships, you must resolve integrity restrictions on this audience.",
    )


def flagged_edit_needs_fields() -> GraphError:
    """100/1713231: editing a flagged (rule-based) audience without changing its flagged fields and rule."""
    return invalid_parameter_plain(
        1713231,
        "Update Restricted Fields and Rule",
        "This custom audience has integrity restrictions. To continue, you must update the restricted "
        "fields and the rule in your current edit",
    )


def flagged_edit_blocked() -> GraphError:
    """100/1713228: editing a flagged lookalike or customer-file (DFCA) audience."""
    return invalid_parameter_plain(
        1713228,
        "Custom Audience Cannot Be Edited",
        "This audience cannot be edited due to integrity restrictions. Please appeal the restrictions or "
        "create a new audience",
    )


def flagged_seed() -> GraphError:
    """100/1713232: a lookalike from a flagged seed."""
    return invalid_parameter_plain(
        1713232,
        "Lookalike Creation Blocked",
        "You can't create a lookalike from a seed audience flagged for integrity issues.",
    )


def audience_deleted(audience_id: str, reason: str) -> GraphError:
    """100/1487366: the audience was deleted outside this client (in Ads Manager, or expired)."""
    why = (
        "it was not used in an active ad set for over two years and expired"
        if reason == "expired"
        else "it was deleted"
    )
    return invalid_parameter_plain(
        1487366,
        "Custom Audience Has Been Deleted",
        f"The custom audience {audience_id} is no longer available because {why}. Create a new audience.",
    )


def audience_unavailable(audience_id: str) -> GraphError:
    """100/1487301: a shared audience this ad account may no longer use or change."""
    return invalid_parameter_plain(
        1487301,
        "Custom Audience Unavailable",
        f"The custom audience {audience_id} you are trying to use has not been shared with your ad account.",
    )


def delete_with_lookalikes() -> GraphError:
    return GraphError(
        2656,
        "(#2656) Failed to delete custom audience because associated lookalikes exist",
        user_title="Cannot delete audience",
        user_msg="Delete the lookalike audiences created from this audience first.",
    )


def throttled(regain_minutes: int) -> GraphError:
    return GraphError(
        80003,
        "(#80003) There have been too many calls to this ad-account. Wait a bit and try again. "
        f"For more info, please refer to {RATE_LIMIT_DOC}.",
        is_transient=True,
        error_data={"estimated_time_to_regain_access": regain_minutes},
    )


def invalid_parameter_plain(subcode: int | None, title: str, msg: str) -> GraphError:
    """100 with the bare message "Invalid parameter", as observed for CAPI 2804003 and the 1713230 family."""
    return GraphError(100, "Invalid parameter", subcode=subcode, user_title=title, user_msg=msg)


def html_error_page(status: int, title: str = "Facebook | Error") -> str:
    """The kind of non-JSON page Facebook's edge returns for infrastructure failures."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
        f"{title}</title></head><body><div><h1>Sorry, something went wrong.</h1>"
        f"<p>We're working on getting this fixed as soon as we can. (HTTP {status})</p>"
        "</div></body></html>"
    )
