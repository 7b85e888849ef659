"""Seeder steering on loopback: a real DataServer refuses a chunk others hold, then serves."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.seeding.test_partial_serving import CS, GAME, OLD, PEER, Swarm, _build, connect

from lanspread.core.partial import ChunkLayout
from lanspread.core.servegate import GateState
from lanspread.core.steering import MAX_STEERS
from lanspread.net.datawire import DataStatus
from lanspread.seeding.dataserver import DataServer, ServeScope, answer_ticket_request

ALPHA = "a" * 64


class Steering:
    """The runtime's SteeringView over the test's manifest: alpha holds chunk 0."""

    def __init__(self, swarm: Swarm) -> None:
        self.layout = ChunkLayout(swarm.manifest)

    async def locate(self, game_id: str, path: str, offset: int, length: int) -> int | None:
        file = self.layout.file(path)
        index = self.layout.index_of(path, offset)
        if game_id != GAME or file is None or index is None:
            return None
        return index if length == min(CS, file.size - offset) else None

    def holders(self, game_id: str, index: int) -> frozenset[str]:
        return frozenset({ALPHA}) if index == 0 else frozenset()


@pytest.fixture
async def seeder(tmp_path: Path) -> AsyncIterator[tuple[Swarm, DataServer, Path]]:
    swarm = _build(tmp_path)
    complete = tmp_path / "complete"
    shutil.copytree(swarm.source, complete / GAME)

    def scope() -> ServeScope:
        return ServeScope(complete, GateState(frozenset({GAME}), frozenset()))

    server = DataServer(scope, host="127.0.0.1", port=0, steering=Steering(swarm))
    async with server:
        yield swarm, server, complete


async def test_a_chunk_another_peer_holds_is_steered_then_served(
    seeder: tuple[Swarm, DataServer, Path],
) -> None:
    """Chunk 0, held by alpha, is answered ELSEWHERE MAX_STEERS times (nothing sent, the
    connection usable), then served byte exact; chunk 1, held by nobody else, is served
    at once, and a range that is not one whole chunk is never steered. (A send of another
    game keeps the server's link busy: an idle one serves whatever is asked.)"""
    swarm, server, complete = seeder
    server.steering_rule.sending("d" * 64, "unreal", 0, 0.0)
    ticket = await answer_ticket_request(
        server,
        PEER,
        GAME,
        ServeScope(complete, GateState(frozenset({GAME}), frozenset())),
        address="127.0.0.1",
        known_since=OLD,
    )
    async with connect(server.port, ticket) as client:
        for _ in range(MAX_STEERS):
            assert await client.ask("data.eti", 0, CS) == (DataStatus.ELSEWHERE, b"")
        assert server.bytes_sent == 0
        assert await client.ask("data.eti", 0, 100) == (
            DataStatus.OK,
            swarm.source_bytes("data.eti", 0, 100),
        )
        assert await client.ask("data.eti", 0, CS) == (
            DataStatus.OK,
            swarm.source_bytes("data.eti", 0, CS),
        )
        assert await client.ask("data.eti", CS, CS) == (
            DataStatus.OK,
            swarm.source_bytes("data.eti", CS, CS),
        )
    assert server.bytes_sent == 2 * CS + 100
