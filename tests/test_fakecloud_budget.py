"""The fake cloud's per-account request budget (issue 13 item 5): 429 with Retry-After past it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizer.enlighten.headers import BROWSER_USER_AGENT
from optimizer.fakecloud import FakeCloud, FakeCloudServer
from optimizer.fakecloud.__main__ import parse_args
from optimizer.fakecloud.budget import RequestBudget, retry_after_header
from optimizer.fakecloud.profile import Profile

STATUS = "/service/evse_controller/1234567/ev_chargers/status"


@given(
    per_hour=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0.0, max_value=900.0), min_size=1, max_size=80),
    accounts=st.lists(st.sampled_from(["a@example.com", "b@example.com"]), min_size=80),
)
def test_no_account_is_served_past_its_budget_in_any_hour(
    per_hour: int, gaps: list[float], accounts: list[str]
) -> None:
    budget = RequestBudget()
    served: dict[str, list[float]] = {}
    now = 0.0
    for gap, account in zip(gaps, accounts, strict=False):
        now += gap
        wait = budget.take(account, now, per_hour)
        if wait is None:
            served.setdefault(account, []).append(now)
        else:
            # the wait names the moment the budget frees: taking then is served
            assert wait >= 0
            probe = RequestBudget(_seen={k: v.copy() for k, v in budget._seen.items()})
            assert probe.take(account, now + wait + 1e-6, per_hour) is None
    for times in served.values():
        for t in times:
            assert sum(1 for u in times if t - 3600.0 < u <= t) <= per_hour


def test_one_account_spending_its_budget_leaves_the_other_untouched() -> None:
    budget = RequestBudget()
    assert all(budget.take("a@example.com", float(i), 3) is None for i in range(3))
    assert budget.take("A@example.com", 3.0, 3) == pytest.approx(3597.0)
    assert budget.take("b@example.com", 3.0, 3) is None
    assert budget.used("a@example.com", 3.0) == 3


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert retry_after_header(0.0) == "1"
    assert retry_after_header(12.2) == "13"


def test_profile_budget_is_off_by_default_and_validated() -> None:
    assert Profile().account_budget_per_hour == 0
    profile = Profile()
    profile.update({"account_budget_per_hour": 600})
    assert profile.account_budget_per_hour == 600
    with pytest.raises(ValueError, match="account_budget_per_hour must be a whole number"):
        profile.update({"account_budget_per_hour": -1})


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeCloud, str, aiohttp.ClientSession]]:
    cloud = FakeCloud()
    async with (
        FakeCloudServer(cloud) as server,
        aiohttp.ClientSession(headers={"User-Agent": BROWSER_USER_AGENT}) as session,
    ):
        yield cloud, server.base_url, session


async def _login(base: str, session: aiohttp.ClientSession, email: str, password: str) -> str:
    async with session.post(
        base + "/login/login.json", data={"user[email]": email, "user[password]": password}
    ) as resp:
        body = await resp.json()
    return str(body["session_id"])


async def test_past_the_budget_the_account_gets_429_with_retry_after(
    served: tuple[FakeCloud, str, aiohttp.ClientSession],
) -> None:
    cloud, base, session = served
    cloud.set_profile(account_budget_per_hour=4)
    sid = await _login(base, session, "owner@example.com", "correct-horse-battery")
    statuses = []
    for _ in range(5):
        cloud.advance(60)
        async with session.get(base + STATUS, headers={"e-auth-token": sid}) as resp:
            statuses.append(resp.status)
            retry_after = resp.headers.get("Retry-After")
    assert statuses == [200, 200, 200, 200, 429]
    # the first counted request was 4 minutes ago: it leaves the hour in 56 minutes
    assert retry_after == str(3600 - 4 * 60)
    cloud.advance(3600 - 4 * 60)
    async with session.get(base + STATUS, headers={"e-auth-token": sid}) as resp:
        assert resp.status == 200


def test_the_command_line_sets_the_budget() -> None:
    assert parse_args(["--budget", "600"]).budget == 600
    assert parse_args([]).budget == 0
