"""The exceptions for user mistakes: caught once at a stage's entry and printed as one line."""


class UserError(Exception):
    """A mistake the user can fix (bad params, bad data, unreachable source)."""


class ConfigError(UserError):
    """``params.yaml`` is invalid: names the key, the value and what is allowed."""


class DataError(UserError):
    """Input data is missing, corrupt, hostile or unreachable: names the file or URL and the fix."""
