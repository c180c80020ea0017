"""``reelroi reattribute --dry-run``: what a new policy would change per source, with nothing changed."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_against_oracle import DATA

pytestmark = pytest.mark.integration


def test_dry_run_shows_the_change_and_leaves_the_tables(store) -> None:  # type: ignore[no-untyped-def]
    store.replay_files(DATA / "spec_example.jsonl")
    before = store.reports()
    # a 10-minute click window: u1's click (40 minutes before the redirect) no longer counts
    code, out, err = store.run(
        "reattribute", "--db", store.dsn, "--dry-run", "--click-window", "10m", "--format", "json"
    )
    assert code == 0, err
    rows = {(r["source_kind"], r["source_id"]): r for r in json.loads(out)}
    assert rows[("campaign", "cA")]["new_users_before"] == 1 and rows[("campaign", "cA")]["new_users_after"] == 0
    assert rows[("campaign", "cA")]["roi_before"] == "0.2500" and rows[("campaign", "cA")]["roi_after"] == "0.0000"
    assert rows[("organic", "organic")]["new_users_after"] == 2
    assert rows[("organic", "organic")]["revenue_after"] == "20.50"
    assert rows[("plan", "pB")]["changed"] is False
    assert "nothing was changed" in err
    assert store.reports() == before  # the live tables and their policy are untouched
    code, out, _ = store.run("reattribute", "--db", store.dsn, "--dry-run", "--click-window", "10m",
                             "--changed-only", "--format", "json")  # fmt: skip
    assert {r["source_id"] for r in json.loads(out)} == {"cA", "organic"}
    code, _, _ = store.run("reattribute", "--db", store.dsn, "--click-window", "10m")
    after = {(r["source_kind"], r["source_id"]): r["new_users"] for r in store.roi()}
    assert after[("organic", "organic")] == 2 and ("campaign", "cA") in after  # cA keeps its spend row
