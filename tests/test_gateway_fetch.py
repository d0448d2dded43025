"""The gateway owner's token from Entrez: each reply variant judged, and the fake kept to them.

One fixture per reply variant (tests/fixtures/entrez_gateway_token*): the token as plain text
(pyenphase's ``EnvoyTokenAuth`` reads ``response.text()``), nginx's 401 page for a refused
session, a 403 for a serial that is not the account's, a 400 without a serial. The fake
cloud's replies are the same texts, so what passes here passes against the fake.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizer.enlighten.errors import (
    EXIT_AUTH,
    EXIT_CLOUD,
    CloudUnreachableError,
    InvalidCredentialsError,
)
from optimizer.enlighten.transport import RawReply
from optimizer.fakecloud.authroutes import ENTREZ_401_PAGE, ENTREZ_FORBIDDEN, ENTREZ_NO_SERIAL
from optimizer.gateway.fetch import GatewayTokenRefusedError, judge_reply
from optimizer.gateway.renew import ATTEMPT_EVERY, RENEW_AHEAD, TokenState, renewal_due
from optimizer.gateway.token import token_facts
from optimizer.logsafe import redact
from tests.fixtures import FIXTURE_DIR

SERIAL = "122302045041"


def _reply(name: str, status: int) -> RawReply:
    return RawReply(status, (FIXTURE_DIR / name).read_text(encoding="utf-8"), {})


def test_the_token_reply_is_the_jwt_as_text_and_becomes_a_secret() -> None:
    token = judge_reply(_reply("entrez_gateway_token.txt", 200), serial=SERIAL)
    facts = token_facts(token)
    assert (facts.serial, facts.user_type) == (SERIAL, "owner")
    assert token not in redact(f"token={token}")  # registered before anything else


def test_a_token_for_another_gateway_is_refused() -> None:
    with pytest.raises(GatewayTokenRefusedError, match="not 999"):
        judge_reply(_reply("entrez_gateway_token.txt", 200), serial="999")


@pytest.mark.parametrize(
    ("name", "status", "error", "exit_code", "reason"),
    [
        ("entrez_gateway_token_401.html", 401, InvalidCredentialsError, EXIT_AUTH, "401 Auth"),
        ("entrez_gateway_token_403.txt", 403, GatewayTokenRefusedError, EXIT_AUTH, "not a gate"),
        ("entrez_gateway_token_400.txt", 400, GatewayTokenRefusedError, EXIT_AUTH, "serial_num"),
        ("entrez_gateway_token_403.txt", 503, CloudUnreachableError, EXIT_CLOUD, "HTTP 503"),
        ("entrez_gateway_token_403.txt", 429, CloudUnreachableError, EXIT_CLOUD, "HTTP 429"),
    ],
)
def test_each_refusal_has_its_error_exit_and_a_short_reason(
    name: str, status: int, error: type[Exception], exit_code: int, reason: str
) -> None:
    with pytest.raises(error) as raised:
        judge_reply(_reply(name, status), serial=SERIAL)
    message = str(raised.value)
    assert reason in message
    assert "<" not in message  # a page is reduced to its title
    assert getattr(raised.value, "exit_code", None) == exit_code


def test_the_fake_answers_with_the_fixtures_texts() -> None:
    for text, name in [
        (ENTREZ_401_PAGE, "entrez_gateway_token_401.html"),
        (ENTREZ_FORBIDDEN, "entrez_gateway_token_403.txt"),
        (ENTREZ_NO_SERIAL, "entrez_gateway_token_400.txt"),
    ]:
        assert text.strip() == (FIXTURE_DIR / name).read_text(encoding="utf-8").strip()


@given(st.integers(200, 599), st.text(max_size=300))
def test_any_reply_is_a_token_or_a_typed_error(status: int, body: str) -> None:
    """Whatever Entrez says, the caller gets a checked token or one of our errors (never a
    KeyError or a page in the message)."""
    errors = (GatewayTokenRefusedError, InvalidCredentialsError, CloudUnreachableError)
    message = ""
    try:
        token = judge_reply(RawReply(status, body, {}), serial=SERIAL)
    except errors as err:
        message = str(err)
    if message:
        assert len(message) < 400
    else:
        assert 200 <= status < 300
        assert token_facts(token).serial in (None, SERIAL)


# --- the renewal policy (optimizer/gateway/renew.py) -----------------------------------------

NOW = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
spans = st.integers(-400 * 86400, 400 * 86400).map(lambda s: timedelta(seconds=s))


@given(left=st.none() | spans, refused=st.booleans(), since=st.none() | spans)
def test_renewal_is_due_only_when_wanted_and_not_tried_within_a_day(
    left: timedelta | None, refused: bool, since: timedelta | None
) -> None:
    expires = NOW + left if left is not None else None
    attempted = NOW - abs(since) if since is not None else None
    due = renewal_due(expires_at=expires, refused=refused, attempted_at=attempted, now=NOW)
    wanted = refused or (left is not None and left < RENEW_AHEAD)
    tried_lately = since is not None and abs(since) < ATTEMPT_EVERY
    assert due == (wanted and not tried_lately)
    if due:  # an attempt now makes it not due for the next day, whatever the outcome
        later = NOW + ATTEMPT_EVERY - timedelta(seconds=1)
        assert not renewal_due(expires_at=expires, refused=refused, attempted_at=NOW, now=later)


def test_the_renewal_state_reads_back_and_survives_damage() -> None:
    state = TokenState(NOW + timedelta(days=9), NOW, None, "Entrez refused (HTTP 403)")
    back = TokenState.from_json(state.as_json())
    assert back == state
    assert state.as_json()["next_renewal_after"] == (NOW + ATTEMPT_EVERY).isoformat()
    for damaged in (None, [], {"expires_at": "yesterday", "renewal_failed": 3}):
        assert TokenState.from_json(damaged) == TokenState()
