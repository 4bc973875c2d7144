"""mParticle's field names, shared by the doors that take mParticle-shaped data (stream, conversions)."""

RESERVED_ATTRIBUTES = {
    "$firstname": "first_name",
    "$lastname": "last_name",
    "$gender": "gender",
    "$city": "city",
    "$state": "state",
    "$zip": "zip",
    "$country": "country",
    "$mobile": "phone",
}
"""mParticle's reserved user attributes that are match keys, to the names of the match-keys alias table."""
