"""Rate limits (`[[limits]]`) and money budgets (`[budget]`) in the decision
path, through the real shim in front of the payment server of
tests/fixtures/threat_servers/ and the official Python client. The counters
are the daemon's, in memory.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from latchkit import Approver, Daemon, Home, mcp_session, text_of, via_shim

SERVERS = Path(__file__).resolve().parent.parent / "fixtures" / "threat_servers"
SHIM = via_shim("pay", [sys.executable, str(SERVERS / "payments.py")])

POLICY = """
[[rule]]
name = "payments allowed"
server = "pay"
class = "TRANSFER_VALUE"
effect = "allow"

[[limits]]
name = "balance"
server = "pay"
tool = "get_balance"
per_minute = 2

[budget]
daily = { USD = 50 }
over = "ask"
"""


def pay(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD", "recipient": "bob"}


def paid(home: Home) -> list[int]:
    return [c["arguments"]["amount"] for c in home.recorded("create_payment")]


@pytest.mark.anyio
async def test_a_rate_limit_denies_with_its_reason(home: Home, start_daemon: Any) -> None:
    start_daemon(policy=POLICY)
    async with mcp_session(home, SHIM) as session:
        for _ in range(2):
            assert not (await session.call_tool("get_balance", {})).is_error
        third = await session.call_tool("get_balance", {})
        assert third.is_error
        text = text_of(third)
        assert 'rate limit: 2 calls in the last minute already (limit 2 a minute, set by limit "balance")' in text, text
        # Other tools are not counted by that limit.
        assert not (await session.call_tool("create_payment", pay(1))).is_error
    assert len(home.recorded("get_balance")) == 2


@pytest.mark.anyio
async def test_a_budget_counts_only_payments_that_ran(home: Home, start_daemon: Any) -> None:
    start_daemon(policy=POLICY)
    async with mcp_session(home, SHIM) as session:
        assert not (await session.call_tool("create_payment", pay(40))).is_error

        # 60 of 50: asks; the person denies, so nothing is counted.
        approver = Approver(home, tool="create_payment", action="deny")
        approver.start()
        with anyio.fail_after(40):
            over = await session.call_tool("create_payment", pay(20))
        entry = approver.outcome()
        assert over.is_error
        why = " ".join(entry["reasons"])
        assert "budget: this payment of 20.00 USD would bring today's spending to 60.00 USD" in why, entry

        # 50 of 50: within, allowed at once.
        assert not (await session.call_tool("create_payment", pay(10))).is_error

        # 55 of 50: asks; approved, it runs and counts.
        approver = Approver(home, tool="create_payment", action="approve")
        approver.start()
        with anyio.fail_after(40):
            assert not (await session.call_tool("create_payment", pay(5))).is_error
        entry = approver.outcome()
        assert "spending to 55.00 USD" in " ".join(entry["reasons"]), entry

        # The next one sees the approved 5: 56 of 50.
        approver = Approver(home, tool="create_payment", action="deny")
        approver.start()
        with anyio.fail_after(40):
            assert (await session.call_tool("create_payment", pay(1))).is_error
        entry = approver.outcome()
        assert "spending to 56.00 USD" in " ".join(entry["reasons"]), entry

        # An amount the budget cannot read asks too (the policy allows refunds).
        approver = Approver(home, tool="refund", action="deny")
        approver.start()
        with anyio.fail_after(40):
            assert (await session.call_tool("refund", {"payment_id": "pay_000001"})).is_error
        entry = approver.outcome()
        assert "could not be read" in " ".join(entry["reasons"]), entry
    assert paid(home) == [40, 10, 5]


@pytest.mark.anyio
async def test_over_budget_deny_is_honoured(home: Home, start_daemon: Any) -> None:
    start_daemon(policy=POLICY.replace('over = "ask"', 'over = "deny"'))
    async with mcp_session(home, SHIM) as session:
        assert not (await session.call_tool("create_payment", pay(50))).is_error
        denied = await session.call_tool("create_payment", pay(1))
        assert denied.is_error
        assert "over the daily budget of 50.00 USD" in text_of(denied), text_of(denied)
    assert paid(home) == [50]
