"""Stable machine codes of every problem the API answers with (RFC 9457 `code` member).

Phones branch on these strings, so they never change meaning; new ones may be added.
"""

from __future__ import annotations

import enum

from mobile_contract.base import Response


class ErrorCode(enum.StrEnum):
    # request shape
    VALIDATION_FAILED = "validation_failed"  # body/query/path did not match the contract; see `errors`
    BODY_TOO_LARGE = "body_too_large"
    JSON_REQUIRED = "json_required"  # a JSON endpoint got another Content-Type (text/plain, a form): a client bug
    INVALID_CURSOR = "invalid_cursor"  # a paging cursor that is malformed or was made for another query
    UNKNOWN_MUTATION = "unknown_mutation"  # a pushed mutation name this server does not know
    RESYNC_REQUIRED = "resync_required"  # a sync cursor we can no longer serve: pull again without a cursor
    NOT_FOUND = "not_found"  # no such route, or no such record visible to the caller
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # auth
    NOT_AUTHENTICATED = "not_authenticated"  # no bearer token
    TOKEN_INVALID = "token_invalid"  # forged, malformed or for another audience
    TOKEN_EXPIRED = "token_expired"  # access token expired: refresh it
    INVALID_CREDENTIALS = "invalid_credentials"
    REFRESH_TOKEN_INVALID = "refresh_token_invalid"  # unknown, expired or revoked: log in again
    REFRESH_TOKEN_REUSED = "refresh_token_reused"  # a rotated token was presented again: the family is revoked
    # The account changed (role, team, data scope or password) after the access token was issued: refresh once;
    # if the refresh is refused (a new password revokes refresh tokens), show the login screen.
    TOKEN_STALE = "token_stale"
    # The account is disabled or deleted: stop syncing, keep the unsent queue on the phone, do not retry or
    # refresh; show "ask your admin" and the login screen.
    ACCOUNT_DISABLED = "account_disabled"
    # Login locked (too many wrong passwords for this account or from this network): do not retry before
    # `retry_after_s` (also the `Retry-After` header); show the wait. A correct password is refused too until then.
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    FORBIDDEN = "forbidden"  # authenticated, but the role may not do this
    # domain
    CONFLICT = "conflict"  # a concurrent write got there first; retrying the same request is safe
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"  # the client id was already used with a different body
    POSSIBLE_DUPLICATE = "possible_duplicate"  # a similar merchant exists nearby; resend with confirm_new=true
    VISIT_ALREADY_CLOSED = "visit_already_closed"
    GOAL_NOT_MET = "goal_not_met"  # a work item closed as goal_met whose outcome does not meet the goal
    INVALID_TRANSITION = "invalid_transition"  # the job's status does not allow this step; see `allowed_actions`
    OUTSIDE_SERVICE_WINDOW = "outside_service_window"
    VERIFICATION_INCOMPLETE = "verification_incomplete"  # the job type's proof is not complete; see `missing`
    CODE_INVALID = "code_invalid"  # wrong customer code; `attempts_left` tells how many tries remain
    CODE_EXPIRED = "code_expired"  # ask dispatch to send a new code
    CODE_ATTEMPTS_EXCEEDED = "code_attempts_exceeded"  # locked after 5 wrong codes: dispatch must send a new one
    # 429: a new code was sent moments ago, or too many today; wait `Retry-After` seconds (or until tomorrow)
    CODE_RESEND_LIMITED = "code_resend_limited"
    NOT_ELIGIBLE = "not_eligible"  # the technician fails a hard dispatch filter; see `reasons`
    ALREADY_TAKEN = "already_taken"  # another technician grabbed the job first
    WORK_ITEM_CLOSED = "work_item_closed"  # a closed (met, not met, expired) work item cannot change hands
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # the bytes are not a JPEG, PNG or WebP image (HEIC is not)
    CORRUPT_IMAGE = "corrupt_image"  # an image that cannot be decoded whole: truncated or damaged; take it again
    # 413: more pixels (width, height or total) than we decode; see `max_width`, `max_height`, `max_pixels`.
    # Send the photo at the camera's normal resolution, or scale it down.
    IMAGE_TOO_LARGE = "image_too_large"
    # tracking (stock tracker apps on /v1/tracking/osmand): no `id`/`deviceid` and no bearer key: configure the app
    TRACKING_ID_MISSING = "tracking_id_missing"
    # unknown or revoked tracking key: ask a supervisor for a new key; retrying the same key never helps
    TRACKING_KEY_INVALID = "tracking_key_invalid"
    IMPORT_UNREADABLE = "import_unreadable"  # the file as a whole is not CSV/JSON with a name column; fix and resend
    # leads (the public/private pool)
    LEAD_TAKEN = "lead_taken"  # another BD holds the lead (or it is won); see `holder`
    CLAIM_LIMIT_REACHED = "claim_limit_reached"  # a cap of the tenant's lead policy; see `limit`, `count`, `cap`
    LEAD_COOLDOWN = "lead_cooldown"  # you released this lead lately: you may claim it again from `until`
    LEAD_NOT_HELD = "lead_not_held"  # the lead is not in your private pool (released, reassigned or never yours)
    LEAD_WON = "lead_won"  # a won lead is locked: no release, no extension, no reassignment
    EXTENSION_LIMIT_REACHED = "extension_limit_reached"  # no extensions left or too long; see `max_*`
    # business events (POST /v1/events, signed by an integration key; README "Business events")
    SIGNATURE_MISSING = "signature_missing"  # no X-Groundwork-Key-Id / -Timestamp / -Signature header
    INTEGRATION_KEY_INVALID = "integration_key_invalid"  # unknown or revoked key id: issue a new key
    SIGNATURE_INVALID = "signature_invalid"  # the HMAC does not match: wrong secret, or the body changed on the way
    # the timestamp is more than 5 minutes from the server's clock: sign again now (check the sender's clock)
    STALE_TIMESTAMP = "stale_timestamp"
    UNKNOWN_MERCHANT = "unknown_merchant"  # no merchant of this tenant has this id or external code (kept as refused)
    UNKNOWN_CURRENCY = "unknown_currency"  # not an active ISO 4217 code, or more decimals than its minor unit
    OCCURRED_IN_FUTURE = "occurred_in_future"  # occurred_at is ahead of the server's clock by more than 5 minutes
    MERCHANT_CODE_TAKEN = "merchant_code_taken"  # another merchant of the tenant already has this external code
    # a trail asked for a longer span than one answer covers (`max_days`): ask for it in parts
    RANGE_TOO_LONG = "range_too_long"
    # a set-password token that is unknown, expired or already used: ask an admin for a new one
    SET_PASSWORD_TOKEN_INVALID = "set_password_token_invalid"
    USERNAME_TAKEN = "username_taken"  # another user (of any tenant) already logs in with this username
    TEAM_CYCLE = "team_cycle"  # a team cannot move under itself or under a team below it
    INTERNAL_ERROR = "internal_error"  # a bug on our side; retry later
    # capacity: nothing was done; retry the same request (same ids) after `Retry-After` seconds
    SERVICE_UNAVAILABLE = "service_unavailable"  # the database is busy or restarting; retry after Retry-After
    TOO_MANY_CONCURRENT = "too_many_concurrent"  # this user already runs as many of these calls as allowed; wait
    # The server is saturated (e.g. too many logins being verified at once): retry after `retry_after_s` seconds
    # (also the `Retry-After` header), with jitter; nothing was done.
    SERVER_BUSY = "server_busy"


STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_FAILED: 422,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.INVALID_CURSOR: 400,
    ErrorCode.UNKNOWN_MUTATION: 422,
    ErrorCode.RESYNC_REQUIRED: 410,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.NOT_AUTHENTICATED: 401,
    ErrorCode.TOKEN_INVALID: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.INVALID_CREDENTIALS: 401,
    ErrorCode.REFRESH_TOKEN_INVALID: 401,
    ErrorCode.REFRESH_TOKEN_REUSED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.CONFLICT: 409,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.POSSIBLE_DUPLICATE: 409,
    ErrorCode.VISIT_ALREADY_CLOSED: 409,
    ErrorCode.GOAL_NOT_MET: 422,
    ErrorCode.INVALID_TRANSITION: 409,
    ErrorCode.OUTSIDE_SERVICE_WINDOW: 422,
    ErrorCode.VERIFICATION_INCOMPLETE: 409,
    ErrorCode.CODE_INVALID: 422,
    ErrorCode.CODE_EXPIRED: 410,
    ErrorCode.CODE_ATTEMPTS_EXCEEDED: 423,
    ErrorCode.CODE_RESEND_LIMITED: 429,
    ErrorCode.NOT_ELIGIBLE: 409,
    ErrorCode.ALREADY_TAKEN: 409,
    ErrorCode.WORK_ITEM_CLOSED: 409,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.CORRUPT_IMAGE: 422,
    ErrorCode.IMAGE_TOO_LARGE: 413,
    ErrorCode.TRACKING_ID_MISSING: 400,
    ErrorCode.TRACKING_KEY_INVALID: 401,
    ErrorCode.IMPORT_UNREADABLE: 422,
    ErrorCode.SIGNATURE_MISSING: 401,
    ErrorCode.INTEGRATION_KEY_INVALID: 401,
    ErrorCode.SIGNATURE_INVALID: 401,
    ErrorCode.STALE_TIMESTAMP: 401,
    ErrorCode.UNKNOWN_MERCHANT: 422,
    ErrorCode.UNKNOWN_CURRENCY: 422,
    ErrorCode.OCCURRED_IN_FUTURE: 422,
    ErrorCode.MERCHANT_CODE_TAKEN: 409,
    ErrorCode.RANGE_TOO_LONG: 422,
    ErrorCode.SET_PASSWORD_TOKEN_INVALID: 400,
    ErrorCode.USERNAME_TAKEN: 409,
    ErrorCode.TEAM_CYCLE: 409,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.SERVER_BUSY: 503,
    ErrorCode.TOO_MANY_ATTEMPTS: 429,
    ErrorCode.TOKEN_STALE: 401,
    ErrorCode.ACCOUNT_DISABLED: 401,
    ErrorCode.JSON_REQUIRED: 415,
    ErrorCode.LEAD_TAKEN: 409,
    ErrorCode.CLAIM_LIMIT_REACHED: 409,
    ErrorCode.LEAD_COOLDOWN: 409,
    ErrorCode.LEAD_NOT_HELD: 409,
    ErrorCode.LEAD_WON: 409,
    ErrorCode.EXTENSION_LIMIT_REACHED: 409,
    ErrorCode.TOO_MANY_CONCURRENT: 429,
}
"""The HTTP status of each code: one mapping, so the status a phone sees never drifts from the code it reads (sync's
cursor refusals included: every `resync_required` is a 410, whether the cursor is past the tombstone horizon, of
another user or from the future of a restored database)."""


def status_of(code: ErrorCode) -> int:
    return STATUS[code]


class FieldError(Response):
    field: str
    message: str
    source: str | None = None


class Problem(Response):
    """RFC 9457 problem details, served as `application/problem+json`."""

    type: str
    title: str
    status: int
    code: ErrorCode
    detail: str | None = None
    errors: list[FieldError] | None = None
    # 429 too_many_attempts and 503 server_busy: whole seconds to wait, the same as the `Retry-After` header.
    retry_after_s: int | None = None
    # Some problems add extension members (RFC 9457 section 3.2), e.g. `candidates` on possible_duplicate.


def problem_type(code: ErrorCode) -> str:
    return f"urn:groundwork:problem:{code.value}"
