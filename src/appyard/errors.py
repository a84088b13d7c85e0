"""Errors that carry a message meant for the user.

Anything raised as `UserError` is shown as a one-line message (CLI) or a
JSON `{"error": ...}` body (admin API); everything else is a bug.
"""


class UserError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""

    status = 400


class NotFound(UserError):
    status = 404


class Conflict(UserError):
    status = 409
