"""State saved to a file and loaded back (the --state option)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from audiencesync.emulator import EmulatorConfig, EmulatorServer

from .conftest import EXACT_COUNTS, Graph, sha


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with EmulatorServer(EmulatorConfig(state_path=str(path), **EXACT_COUNTS)) as first:
        g = Graph(first)
        aud = g.create(name="kept", is_value_based=True)
        g.add(aud, ["EMAIL", "LOOKALIKE_VALUE"], [[sha("a"), 3], [sha("b"), 4.5]], {"session_id": 9, "batch_seq": 1})
        g.replace(aud, ["EMAIL", "LOOKALIKE_VALUE"], [[sha("c"), 1]], {"session_id": 10, "batch_seq": 1})
        g.emu("POST", "/accounts/act_3", {"tos_accepted": False})
        now = int(g.emu("GET", "/clock").json()["now"])
        g.post(
            "/31/events",
            json={
                "data": [
                    {
                        "event_name": "Lead",
                        "event_time": now,
                        "action_source": "chat",
                        "user_data": {"external_id": "c1"},
                    }
                ]
            },
        )
        g.http.close()
    assert path.exists()
    with EmulatorServer(EmulatorConfig(state_path=str(path), **EXACT_COUNTS)) as second:
        g = Graph(second)
        f = g.fields(aud, "name", "is_value_based", "operation_status", "approximate_count_lower_bound")
        assert f["name"] == "kept" and f["is_value_based"] is True
        assert f["operation_status"]["code"] == 414  # the replace is still in progress
        assert f["approximate_count_lower_bound"] == 2
        assert sorted(m["LOOKALIKE_VALUE"] for m in g.members(aud)) == [3, 4.5]
        sess = g.get(f"/{aud}/sessions", params={"session_id": 9}).json()["data"][0]
        assert sess["num_received"] == "2"
        # the replace session continues after the restart
        done = g.replace(
            aud,
            ["EMAIL", "LOOKALIKE_VALUE"],
            [[sha("d"), 2]],
            {"session_id": 10, "batch_seq": 2, "last_batch_flag": True},
        )
        assert done.status_code == 200, done.text
        assert sorted(m["EMAIL"] for m in g.members(aud)) == sorted([sha("c"), sha("d")])
        assert g.emu("GET", "/accounts/act_3").json()["tos_accepted"] is False
        assert len(g.emu("GET", "/datasets/31/events").json()["events"]) == 1
        new = g.create()
        assert int(new) > int(aud)
        g.http.close()


def test_periodic_save(tmp_path: Path) -> None:
    path = tmp_path / "auto.json"
    with EmulatorServer(EmulatorConfig(state_path=str(path), state_save_interval_s=0.05)) as server:
        g = Graph(server)
        aud = g.create()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if path.exists() and aud.encode() in path.read_bytes():
                break
            time.sleep(0.05)
        state = orjson.loads(path.read_bytes())
        assert [a["id"] for a in state["audiences"]["audiences"]] == [aud]
        g.http.close()
