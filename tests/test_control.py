"""Control commands without a cloud: the variant order, payloads, level checks, benign replies,
the probe that finds (and remembers) the variant a deployment accepts, and which write
failures the transport may resend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from optimizer.enlighten.control import (
    START_WITH_LEVEL,
    START_WITHOUT_LEVEL,
    STOP,
    Body,
    CommandResult,
    Outcome,
    Variant,
    benign,
    probe,
)
from optimizer.enlighten.errors import (
    BadRequestError,
    CloudTimeoutError,
    CloudUnreachableError,
    ConflictError,
    ConnectionNotEstablishedError,
    EnlightenError,
    EnlightenHTTPStatusError,
    ForbiddenError,
    InvalidLevelError,
    MethodNotAllowedError,
    NotFoundError,
    NoWorkingVariantError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from optimizer.enlighten.models import ChargerSummary, parse_summary
from optimizer.enlighten.transport import Reply, Transport, error_for_status, is_retryable
from optimizer.enlighten.variants import VARIANTS_FILE, VariantMemory
from optimizer.limits import Limits
from tests.conftest import SleepRecorder
from tests.fixtures import DELETE, patched_fixture

SITE = 1234567
SN = "EV9876543210"
KEY = f"{SITE}:{SN}:start_charging:level"


# --- the documented variant order ------------------------------------------------------------


def test_start_with_level_order_is_body_then_path_then_verb() -> None:
    assert [v.name for v in START_WITH_LEVEL] == [
        "POST ev_chargers camel",
        "PUT ev_chargers camel",
        "POST ev_charger camel",
        "PUT ev_charger camel",
        "POST ev_chargers snake",
        "PUT ev_chargers snake",
        "POST ev_charger snake",
        "PUT ev_charger snake",
    ]
    # The first variant is the spec's canonical request.
    assert START_WITH_LEVEL[0] == Variant("POST", False, Body.CAMEL)


def test_start_without_level_order() -> None:
    assert [v.name for v in START_WITHOUT_LEVEL] == [
        "POST ev_chargers camel-no-level",
        "PUT ev_chargers camel-no-level",
        "POST ev_charger camel-no-level",
        "PUT ev_charger camel-no-level",
        "POST ev_chargers snake-no-level",
        "PUT ev_chargers snake-no-level",
        "POST ev_charger snake-no-level",
        "PUT ev_charger snake-no-level",
        "POST ev_chargers no-body",
        "PUT ev_chargers no-body",
        "POST ev_charger no-body",
        "PUT ev_charger no-body",
    ]


def test_stop_order_puts_the_canonical_put_first() -> None:
    assert [v.name for v in STOP] == [
        "PUT ev_chargers no-body",
        "POST ev_chargers no-body",
        "PUT ev_charger no-body",
        "POST ev_charger no-body",
    ]


def test_variant_names_are_unique() -> None:
    for variants in (START_WITH_LEVEL, START_WITHOUT_LEVEL, STOP):
        assert len({v.name for v in variants}) == len(variants)


# --- paths and payloads ----------------------------------------------------------------------


def test_variant_path_plural_and_singular() -> None:
    plural = Variant("POST", False, Body.CAMEL)
    singular = Variant("PUT", True, Body.CAMEL)
    assert plural.path(SITE, SN, "start_charging") == (
        f"/service/evse_controller/{SITE}/ev_chargers/{SN}/start_charging"
    )
    assert singular.path(SITE, SN, "stop_charging") == (
        f"/service/evse_controller/{SITE}/ev_charger/{SN}/stop_charging"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (Body.CAMEL, {"chargingLevel": 16, "connectorId": 1}),
        (Body.SNAKE, {"charging_level": 16, "connector_id": 1}),
        (Body.CAMEL_NO_LEVEL, {"connectorId": 1}),
        (Body.SNAKE_NO_LEVEL, {"connector_id": 1}),
        (Body.NONE, None),
    ],
)
def test_variant_payload_for_every_body_style(body: Body, expected: Any) -> None:
    assert Variant("POST", False, body).payload(16) == expected


def test_every_body_style_has_a_payload_case() -> None:
    # A new Body member without a payload case would silently send no body.
    payloads = {body: Variant("POST", False, body).payload(8) for body in Body}
    assert [body for body, payload in payloads.items() if payload is None] == [Body.NONE]


# --- limits ----------------------------------------------------------------------------------


def summary(*patches: Any) -> ChargerSummary:
    return parse_summary(patched_fixture("summary_charger", *patches))


def test_limits_from_the_summary_strings() -> None:
    limits = Limits.for_charger(summary(), site_max_amps=None)
    assert limits == Limits(6, 32, 1)


def test_limits_granularity_from_the_summary() -> None:
    levels = {"data": {"chargeLevelDetails": {"min": "8", "max": "40", "granularity": "2"}}}
    assert Limits.for_charger(summary(levels), site_max_amps=None) == Limits(8, 40, 2)


def test_site_limit_lowers_the_max_but_never_raises_it() -> None:
    assert Limits.for_charger(summary(), site_max_amps=20) == Limits(6, 20, 1)
    assert Limits.for_charger(summary(), site_max_amps=63) == Limits(6, 32, 1)


def test_limits_default_without_level_details() -> None:
    bare = summary({"data": {"chargeLevelDetails": DELETE, "maxCurrent": DELETE}})
    assert Limits.for_charger(bare, site_max_amps=None) == Limits(6, 32, 1)


def test_limits_fall_back_to_max_current() -> None:
    bare = summary({"data": {"chargeLevelDetails": DELETE, "maxCurrent": 48}})
    assert Limits.for_charger(bare, site_max_amps=None) == Limits(6, 48, 1)


def test_limits_zero_granularity_means_one() -> None:
    levels = {"data": {"chargeLevelDetails": {"granularity": "0"}}}
    assert Limits.for_charger(summary(levels), site_max_amps=None).granularity == 1


@pytest.mark.parametrize("level", [6, 7, 16, 31, 32])
def test_validate_accepts_levels_in_range(level: int) -> None:
    assert Limits(6, 32).validate(level) == level


@pytest.mark.parametrize("level", [-1, 0, 5, 33, 100])
def test_validate_rejects_levels_out_of_range(level: int) -> None:
    with pytest.raises(InvalidLevelError, match="outside the allowed 6-32 A"):
        Limits(6, 32).validate(level)


def test_validate_granularity_steps_count_from_the_minimum() -> None:
    limits = Limits(6, 32, 4)
    accepted = [level for level in range(0, 40) if _accepts(limits, level)]
    assert accepted == [6, 10, 14, 18, 22, 26, 30]
    with pytest.raises(InvalidLevelError, match="not on the allowed 6-32 A in steps of 4 A"):
        limits.validate(8)


def _accepts(limits: Limits, level: int) -> bool:
    try:
        limits.validate(level)
    except InvalidLevelError:
        return False
    return True


@pytest.mark.parametrize("level", [True, False, 16.0, 16.5, "16", None])
def test_validate_rejects_non_integers(level: Any) -> None:
    with pytest.raises(InvalidLevelError, match="whole number of amps"):
        Limits(0, 32).validate(level)


def test_validate_with_a_site_limit_below_the_minimum_accepts_nothing() -> None:
    limits = Limits.for_charger(summary(), site_max_amps=4)
    for level in (4, 5, 6):
        with pytest.raises(InvalidLevelError, match="site limit"):
            limits.validate(level)


@pytest.mark.parametrize(
    ("limits", "highest"),
    [(Limits(6, 32), 32), (Limits(6, 32, 4), 30), (Limits(6, 28, 4), 26), (Limits(6, 6, 3), 6)],
)
def test_highest_is_the_top_accepted_step(limits: Limits, highest: int) -> None:
    assert limits.highest() == highest
    assert highest == max(level for level in range(0, 100) if _accepts(limits, level))


def test_highest_with_a_site_limit_below_the_minimum_is_an_error() -> None:
    with pytest.raises(InvalidLevelError, match="site limit"):
        Limits(6, 4).highest()


def test_invalid_level_error_says_nothing_was_sent() -> None:
    with pytest.raises(InvalidLevelError) as caught:
        Limits(6, 32).validate(40)
    assert "nothing was sent" in caught.value.user_message()


# --- benign replies --------------------------------------------------------------------------


def http_error(status: int, code: str | None = None, said: str | None = None) -> Any:
    body: dict[str, Any] = {}
    if code is not None:
        body["code"] = code
    if said is not None:
        body["message"] = said
    return error_for_status(status, url="u", body=body)


def test_not_plugged_code_is_not_ready() -> None:
    err = BadRequestError("x", status=400, url="u", code="iqevc_ms-10008")
    assert benign(err, "start_charging") == (
        Outcome.NOT_READY,
        "charger not ready: no vehicle plugged in",
    )


def test_any_400_on_stop_is_nothing_to_stop() -> None:
    """2026 reference, section 2: 400/404/409/422 on a stop mean there is nothing to stop."""
    err = BadRequestError("x", status=400, url="u", code="iqevc_ms-10008")
    assert benign(err, "stop_charging") == (
        Outcome.NOT_ACTIVE,
        "no active charging session to stop",
    )


def test_already_charging_code() -> None:
    err = BadRequestError("x", status=400, url="u", code="iqevc_ms-10012")
    assert benign(err, "start_charging") == (Outcome.ALREADY_CHARGING, "charger already charging")


@pytest.mark.parametrize("status", [409, 422])
def test_conflict_is_not_ready_on_start_and_not_active_on_stop(status: int) -> None:
    err = http_error(status)
    assert isinstance(err, ConflictError)
    start = benign(err, "start_charging")
    stop = benign(err, "stop_charging")
    assert start is not None
    assert start[0] is Outcome.NOT_READY
    assert stop is not None
    assert stop[0] is Outcome.NOT_ACTIVE


def test_400_without_code() -> None:
    err = BadRequestError("x", status=400, url="u", code=None)
    assert benign(err, "start_charging") == (Outcome.NOT_READY, "charger not ready")
    assert benign(err, "stop_charging") == (
        Outcome.NOT_ACTIVE,
        "no active charging session to stop",
    )


def test_benign_detail_carries_what_the_server_said() -> None:
    err = http_error(409, said="Charger busy")
    assert benign(err, "start_charging") == (
        Outcome.NOT_READY,
        'charger not ready (the cloud said: "Charger busy")',
    )


@pytest.mark.parametrize(
    "err",
    [
        NotFoundError("x", status=404, url="u"),
        MethodNotAllowedError("x", status=405, url="u"),
        UnauthorizedError("x", status=401, url="u"),
        ForbiddenError("x", status=403, url="u"),
        RateLimitedError("x", status=429, url="u", retry_after=None),
        ServiceUnavailableError("x", status=503, url="u"),
    ],
)
def test_other_errors_are_not_benign(err: EnlightenHTTPStatusError) -> None:
    assert benign(err, "start_charging") is None


def test_command_result_message() -> None:
    accepted = CommandResult("start_charging", Outcome.ACCEPTED, "charging started at 16 A")
    assert accepted.message() == "charging started at 16 A"
    for outcome in (Outcome.UNCHANGED, Outcome.NOT_READY, Outcome.NOT_ACTIVE):
        result = CommandResult("stop_charging", outcome, "no active charging session to stop")
        assert result.message() == "no active charging session to stop; nothing changed"


def test_only_accepted_changed_anything() -> None:
    assert [outcome for outcome in Outcome if outcome.changed] == [Outcome.ACCEPTED]


# --- probe -----------------------------------------------------------------------------------

OK = Reply(status=200, data={"status": "accepted"}, headers={})


def not_found() -> NotFoundError:
    return NotFoundError("x", status=404, url="u")


def not_allowed() -> MethodNotAllowedError:
    return MethodNotAllowedError("x", status=405, url="u")


def bad_request(code: str | None = None) -> BadRequestError:
    return BadRequestError("x", status=400, url="u", code=code)


class FakeSend:
    """Answers each variant by name (an error to raise or a reply); ``default`` for the rest."""

    def __init__(
        self, answers: dict[str, Exception | Reply], default: Callable[[], Exception] = not_found
    ) -> None:
        self.answers = answers
        self.default = default
        self.calls: list[str] = []

    async def __call__(self, variant: Variant) -> Reply:
        self.calls.append(variant.name)
        answer = self.answers.get(variant.name)
        if answer is None:
            raise self.default()
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def memory(state_dir: Path) -> VariantMemory:
    return VariantMemory(state_dir)


async def run_probe(
    send: FakeSend,
    memory: VariantMemory,
    *,
    variants: tuple[Variant, ...] = START_WITH_LEVEL,
    command: str = "start_charging",
    hint: Variant | None = None,
) -> tuple[Variant, Reply | tuple[Outcome, str], tuple[str, ...]]:
    return await probe(
        command=command, key=KEY, variants=variants, send=send, memory=memory, hint=hint
    )


async def test_probe_sends_the_canonical_variant_first(memory: VariantMemory) -> None:
    send = FakeSend({"POST ev_chargers camel": OK})
    variant, reply, attempts = await run_probe(send, memory)
    assert send.calls == ["POST ev_chargers camel"]
    assert variant == START_WITH_LEVEL[0]
    assert reply is OK
    assert attempts == ("POST ev_chargers camel: accepted",)


async def test_probe_tries_variants_in_order_skipping_404_405_and_codeless_400(
    memory: VariantMemory,
) -> None:
    send = FakeSend(
        {
            "POST ev_chargers camel": not_found(),
            "PUT ev_chargers camel": not_allowed(),
            "POST ev_charger camel": bad_request(),
            "PUT ev_charger camel": not_found(),
            "POST ev_chargers snake": OK,
        }
    )
    variant, reply, attempts = await run_probe(send, memory)
    assert send.calls == [v.name for v in START_WITH_LEVEL[:5]]
    assert variant.name == "POST ev_chargers snake"
    assert reply is OK
    assert attempts == (
        "POST ev_chargers camel: HTTP 404",
        "PUT ev_chargers camel: HTTP 405",
        "POST ev_charger camel: HTTP 400",
        "PUT ev_charger camel: HTTP 404",
        "POST ev_chargers snake: accepted",
    )


async def test_probe_remembers_the_winner_across_a_restart(
    memory: VariantMemory, state_dir: Path
) -> None:
    send = FakeSend({"PUT ev_charger snake": OK})
    await run_probe(send, memory)
    assert (state_dir / VARIANTS_FILE).exists()
    assert memory.get(KEY) == "PUT ev_charger snake"
    # A restart keeps it: a new memory on the same dir reads the file.
    assert VariantMemory(state_dir).get(KEY) == "PUT ev_charger snake"


async def test_remembered_variant_goes_first_next_time(
    memory: VariantMemory, state_dir: Path
) -> None:
    await run_probe(FakeSend({"PUT ev_charger snake": OK}), memory)
    again = FakeSend({"PUT ev_charger snake": OK})
    variant, _, attempts = await run_probe(again, VariantMemory(state_dir))
    assert again.calls == ["PUT ev_charger snake"]
    assert variant.name == "PUT ev_charger snake"
    assert attempts == ("PUT ev_charger snake: accepted",)


@pytest.mark.parametrize("gone", [not_found, not_allowed])
async def test_remembered_variant_that_stops_working_is_forgotten_and_probing_goes_on(
    memory: VariantMemory, state_dir: Path, gone: Callable[[], Exception]
) -> None:
    memory.remember(KEY, "PUT ev_charger snake")
    send = FakeSend({"PUT ev_charger snake": gone(), "PUT ev_chargers camel": OK})
    variant, _, _ = await run_probe(send, memory)
    assert send.calls == [
        "PUT ev_charger snake",
        "POST ev_chargers camel",
        "PUT ev_chargers camel",
    ]
    assert variant.name == "PUT ev_chargers camel"
    assert VariantMemory(state_dir).get(KEY) == "PUT ev_chargers camel"


async def test_remembered_variant_that_fails_everywhere_is_forgotten(
    memory: VariantMemory, state_dir: Path
) -> None:
    memory.remember(KEY, "PUT ev_charger snake")
    with pytest.raises(NoWorkingVariantError):
        await run_probe(FakeSend({}), memory)
    assert memory.get(KEY) is None
    assert VariantMemory(state_dir).get(KEY) is None


async def test_codeless_400_on_the_remembered_variant_is_the_chargers_state(
    memory: VariantMemory,
) -> None:
    memory.remember(KEY, "PUT ev_charger snake")
    send = FakeSend({"PUT ev_charger snake": bad_request(), "POST ev_chargers camel": OK})
    variant, answer, _ = await run_probe(send, memory)
    assert send.calls == ["PUT ev_charger snake"]
    assert variant.name == "PUT ev_charger snake"
    assert answer == (Outcome.NOT_READY, "charger not ready")
    assert memory.get(KEY) == "PUT ev_charger snake"


@pytest.mark.parametrize(
    ("err", "outcome"),
    [
        (bad_request("iqevc_ms-10008"), Outcome.NOT_READY),
        (bad_request("iqevc_ms-10012"), Outcome.ALREADY_CHARGING),
        (ConflictError("x", status=409, url="u"), Outcome.NOT_READY),
        (ConflictError("x", status=422, url="u"), Outcome.NOT_READY),
    ],
)
async def test_benign_reply_while_probing_stops_and_remembers(
    memory: VariantMemory, state_dir: Path, err: Exception, outcome: Outcome
) -> None:
    send = FakeSend({"POST ev_chargers camel": not_found(), "PUT ev_chargers camel": err})
    variant, answer, attempts = await run_probe(send, memory)
    assert send.calls == ["POST ev_chargers camel", "PUT ev_chargers camel"]
    assert variant.name == "PUT ev_chargers camel"
    assert isinstance(answer, tuple)
    assert answer[0] is outcome
    assert attempts[-1].startswith("PUT ev_chargers camel: HTTP ")
    assert VariantMemory(state_dir).get(KEY) == "PUT ev_chargers camel"


@pytest.mark.parametrize(
    "err",
    [
        UnauthorizedError("x", status=401, url="u"),
        ForbiddenError("x", status=403, url="u"),
        RateLimitedError("x", status=429, url="u", retry_after=None),
        ServiceUnavailableError("x", status=500, url="u"),
        ServiceUnavailableError("x", status=503, url="u"),
        ConnectionNotEstablishedError("x", status=552, url="u"),
        CloudTimeoutError("x"),
    ],
)
async def test_auth_rate_limit_and_server_errors_propagate_at_once(
    memory: VariantMemory, err: Exception
) -> None:
    send = FakeSend({"POST ev_chargers camel": err, "PUT ev_chargers camel": OK})
    with pytest.raises(type(err)) as caught:
        await run_probe(send, memory)
    assert caught.value is err
    assert send.calls == ["POST ev_chargers camel"]
    assert memory.get(KEY) is None


async def test_all_404_raises_no_working_variant_listing_the_attempts(
    memory: VariantMemory, state_dir: Path
) -> None:
    send = FakeSend({})
    with pytest.raises(NoWorkingVariantError) as caught:
        await run_probe(send, memory)
    assert send.calls == [v.name for v in START_WITH_LEVEL]
    message = caught.value.message
    assert f"tried {len(START_WITH_LEVEL)}" in message
    for variant in START_WITH_LEVEL:
        assert f"{variant.name}: HTTP 404" in message
    assert not (state_dir / VARIANTS_FILE).exists()


async def test_all_405_raises_no_working_variant(memory: VariantMemory) -> None:
    with pytest.raises(NoWorkingVariantError, match="HTTP 405"):
        await run_probe(FakeSend({}, default=not_allowed), memory, variants=STOP)


@pytest.mark.parametrize(
    ("command", "outcome"),
    [("start_charging", Outcome.NOT_READY), ("stop_charging", Outcome.NOT_ACTIVE)],
)
async def test_all_codeless_400_is_the_chargers_state(
    memory: VariantMemory, command: str, outcome: Outcome
) -> None:
    send = FakeSend({}, default=bad_request)
    variants = START_WITH_LEVEL if command == "start_charging" else STOP
    _, answer, attempts = await run_probe(send, memory, variants=variants, command=command)
    assert isinstance(answer, tuple)
    assert answer[0] is outcome
    if command == "start_charging":
        # A codeless 400 on a start may be the body: every variant is tried.
        assert send.calls == [v.name for v in variants]
        assert len(attempts) == len(variants)
        assert memory.get(KEY) is None
    else:
        # A stop has no body: its first 400 already says there is nothing to stop.
        assert send.calls == [variants[0].name]
        assert len(attempts) == 1


async def test_hint_puts_the_same_route_level_less_variant_first(memory: VariantMemory) -> None:
    hint = Variant("PUT", True, Body.CAMEL)
    send = FakeSend({"PUT ev_charger camel-no-level": OK})
    variant, _, _ = await run_probe(send, memory, variants=START_WITHOUT_LEVEL, hint=hint)
    assert send.calls == ["PUT ev_charger camel-no-level"]
    assert variant == Variant("PUT", True, Body.CAMEL_NO_LEVEL)


async def test_hint_order_then_falls_back_to_the_documented_order(memory: VariantMemory) -> None:
    hint = Variant("POST", True, Body.SNAKE)
    send = FakeSend({})
    with pytest.raises(NoWorkingVariantError):
        await run_probe(send, memory, variants=START_WITHOUT_LEVEL, hint=hint)
    same_route = ["POST ev_charger snake-no-level"]
    rest = [v.name for v in START_WITHOUT_LEVEL if v.name not in same_route]
    assert send.calls == same_route + rest


async def test_remembered_variant_beats_the_hint(memory: VariantMemory) -> None:
    memory.remember(KEY, "POST ev_chargers no-body")
    send = FakeSend({"POST ev_chargers no-body": OK})
    await run_probe(
        send, memory, variants=START_WITHOUT_LEVEL, hint=Variant("PUT", True, Body.CAMEL)
    )
    assert send.calls == ["POST ev_chargers no-body"]


def test_variant_memory_without_a_state_dir_keeps_nothing_on_disk(tmp_path: Path) -> None:
    memory = VariantMemory(None)
    memory.remember(KEY, "PUT ev_chargers camel")
    assert memory.get(KEY) == "PUT ev_chargers camel"
    assert list(tmp_path.iterdir()) == []


def test_variant_memory_ignores_an_unreadable_file(state_dir: Path) -> None:
    state_dir.mkdir()
    (state_dir / VARIANTS_FILE).write_text("{not json", encoding="utf-8")
    assert VariantMemory(state_dir).get(KEY) is None


# --- which write failures may be resent ("unapplied") ----------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (429, True),
        (502, True),
        (503, True),
        (504, True),
        (550, True),
        (551, True),
        (500, False),
        (552, False),
        (400, False),
        (401, False),
        (404, False),
        (409, False),
    ],
)
def test_unapplied_retries_only_statuses_that_prove_nothing_happened(
    status: int, retryable: bool
) -> None:
    assert is_retryable(http_error(status), "unapplied") is retryable


@pytest.mark.parametrize(
    ("err", "retryable"),
    [
        (CloudUnreachableError("x", request_sent=False), True),
        (CloudUnreachableError("x", request_sent=True), False),
        (CloudTimeoutError("x"), False),
    ],
)
def test_unapplied_connection_failures(err: EnlightenError, retryable: bool) -> None:
    assert is_retryable(err, "unapplied") is retryable


URL_ = "https://enlighten.example/service/evse_controller/1/ev_chargers/SN/start_charging"


@pytest.fixture
def mock_http() -> Iterator[aioresponses]:
    with aioresponses() as mocked:
        yield mocked


@pytest.fixture
async def transport() -> Any:
    made = Transport(base_url="https://enlighten.example")
    yield made
    await made.close()


def posts(mocked: aioresponses) -> int:
    return sum(len(calls) for (method, _), calls in mocked.requests.items() if method == "POST")


async def test_unapplied_post_503_then_200_is_sent_twice(
    mock_http: aioresponses, transport: Transport, sleeps: SleepRecorder
) -> None:
    mock_http.post(URL_, status=503, payload={})
    mock_http.post(URL_, payload={"status": "accepted"})
    reply = await transport.request("POST", URL_, family="control", retry="unapplied")
    assert reply.data == {"status": "accepted"}
    assert posts(mock_http) == 2
    assert len(sleeps.delays) == 1


async def test_unapplied_post_500_is_sent_once(
    mock_http: aioresponses, transport: Transport, sleeps: SleepRecorder
) -> None:
    mock_http.post(URL_, status=500, payload={})
    mock_http.post(URL_, payload={"status": "accepted"})
    with pytest.raises(ServiceUnavailableError):
        await transport.request("POST", URL_, family="control", retry="unapplied")
    assert posts(mock_http) == 1
    assert sleeps.delays == []


async def test_unapplied_post_timeout_is_sent_once(
    mock_http: aioresponses, transport: Transport, sleeps: SleepRecorder
) -> None:
    mock_http.post(URL_, timeout=True)
    mock_http.post(URL_, payload={"status": "accepted"})
    with pytest.raises(CloudTimeoutError):
        await transport.request("POST", URL_, family="control", retry="unapplied")
    assert posts(mock_http) == 1
    assert sleeps.delays == []


async def test_write_without_retry_mode_is_never_resent(
    mock_http: aioresponses, transport: Transport
) -> None:
    mock_http.post(URL_, status=503, payload={})
    mock_http.post(URL_, payload={"status": "accepted"})
    with pytest.raises(ServiceUnavailableError):
        await transport.request("POST", URL_, family="control")
    assert posts(mock_http) == 1


async def test_a_400_with_an_unknown_code_while_probing_is_a_rejected_body(
    memory: VariantMemory,
) -> None:
    """Only the charger-state codes prove a variant was understood; other codes move on."""
    send = FakeSend(
        {
            "POST ev_chargers camel": BadRequestError(
                "x", status=400, url="u", code="INVALID_PAYLOAD"
            ),
            "PUT ev_chargers camel": OK,
        }
    )
    variant, reply, _ = await run_probe(send, memory)
    assert variant.name == "PUT ev_chargers camel"
    assert reply is OK
    assert memory.get(KEY) == "PUT ev_chargers camel"
