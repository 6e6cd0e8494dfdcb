"""`gitstore cluster`: the nodes of a cluster, where each repository lives, moves, drains and
promotions.

Every command reads the control plane (GITSTORE_CLUSTER_DSN, or --dsn). `move`, `drain` and
`promote` ask the node that runs them (the one a repository moves to; the one drained; the
replica promoted) with a call signed by
the cluster's secret, as the nodes call each other: whoever holds the control plane's DSN is the
cluster's operator. They wait for the end, showing each step (or, with --json, print the final
status); --no-wait prints the status at once.

Exit status: 0 done, 1 the move or drain failed (undone: the repository stays where it was), 2
refused (an unknown or down node, a repository already moving, ...).
"""

from __future__ import annotations

import atexit
import time
from collections import Counter
from typing import Annotated, Any

import orjson
import typer

from gitstore.cli.base import Json, app

cluster = typer.Typer(help="A cluster's nodes, and moving repositories between them.", no_args_is_help=True)
app.add_typer(cluster, name="cluster")

Dsn = Annotated[
    str,
    typer.Option("--dsn", envvar="GITSTORE_CLUSTER_DSN", help="the control plane's PostgreSQL URL", show_default=False),
]
Wait = Annotated[bool, typer.Option("--wait/--no-wait", help="wait until it ends, showing each step")]
Timeout = Annotated[float, typer.Option(help="seconds to wait at most")]
#: How the command signs its calls, as a node would (the receiving node's logs show this name).
CALLER = "gitstore-cli"


def _plane(dsn: str) -> Any:
    if not dsn:
        typer.echo("error: no control plane: set GITSTORE_CLUSTER_DSN or pass --dsn", err=True)
        raise typer.Exit(2)
    from gitstore.cluster.api import ControlPlane

    plane = ControlPlane(dsn)
    atexit.register(plane.close)
    return plane


@cluster.command("nodes")
def nodes(dsn: Dsn = "", json: Json = False) -> None:
    """Every node: its state, whether it sends its heartbeat, how many repositories it owns."""
    rows = _nodes(_plane(dsn))
    if json:
        typer.echo(orjson.dumps(rows).decode())
        return
    _print_nodes(rows)


@cluster.command("status")
def status(dsn: Dsn = "", json: Json = False) -> None:
    """The nodes, and where each repository lives (moves in progress shown with their target)."""
    plane = _plane(dsn)
    routes = [
        {
            "repository": r.repo,
            "owner": r.owner,
            "epoch": r.epoch,
            "state": r.state,
            "move_target": r.move_target,
            "owner_alive": r.owner_alive,
        }
        for r in plane.routes()
    ]
    if json:
        typer.echo(orjson.dumps({"nodes": _nodes(plane), "repositories": routes}).decode())
        return
    _print_nodes(_nodes(plane))
    for r in routes:
        moving = f"  -> {r['move_target']} ({r['state']})" if r["move_target"] else ""
        down = "" if r["owner_alive"] else "  (its node is not answering)"
        typer.echo(f"  {r['repository']:<32} on {r['owner']}  epoch {r['epoch']}{moving}{down}")


@cluster.command("move")
def move(
    repository: str,
    node: str,
    dsn: Dsn = "",
    wait: Wait = True,
    timeout: Timeout = 3600.0,
    json: Json = False,
) -> None:
    """Move REPOSITORY to NODE while writes go on; writes pause from the fence to the flip."""
    plane = _plane(dsn)
    peer = _peer(plane, node)
    answer = peer.call("POST", "/internal/cluster/moves", {"repository": repository})
    _refused(answer)
    shown = _follow(peer, f"/internal/cluster/moves/{repository}", answer.body, wait, timeout, json, _move_line)
    _exit(shown, wait)


@cluster.command("drain")
def drain(
    node: str,
    dsn: Dsn = "",
    wait: Wait = True,
    timeout: Timeout = 24 * 3600.0,
    json: Json = False,
) -> None:
    """Move every repository off NODE, one at a time, to the least-loaded other nodes."""
    plane = _plane(dsn)
    peer = _peer(plane, node)
    answer = peer.call("POST", "/internal/cluster/drains", {})
    _refused(answer)
    shown = _follow(peer, "/internal/cluster/drains", answer.body, wait, timeout, json, _drain_line)
    _exit(shown, wait)


@cluster.command("promote")
def promote(repository: str, node: str, dsn: Dsn = "", json: Json = False) -> None:
    """Make NODE's replica of REPOSITORY its owner now: before maintenance of the owner, or
    rather than wait for the failover. Only an in-sync replica is promoted (one that may lack
    acknowledged writes is refused); the old owner is fenced and becomes a replica."""
    peer = _peer(_plane(dsn), node)
    answer = peer.call("POST", "/internal/cluster/promotions", {"repository": repository})
    _refused(answer)
    if json:
        typer.echo(orjson.dumps(answer.body).decode())
    else:
        done = answer.body
        typer.echo(f"{repository}: owned by {done['owner']} at epoch {done['epoch']} ({done['seconds']:.2f} s)")


def _nodes(plane: Any) -> list[dict[str, Any]]:
    owned = Counter(r.owner for r in plane.routes())
    return [
        {
            "name": n.name,
            "url": n.url,
            "state": n.state,
            "alive": n.alive,
            "heartbeat_at": n.heartbeat_at.isoformat(),
            "repositories": owned[n.name],
        }
        for n in plane.nodes()
    ]


def _print_nodes(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        alive = "alive" if row["alive"] else "NOT ANSWERING"
        typer.echo(
            f"{row['name']:<16} {row['state']:<9} {alive:<14} {row['repositories']:>5} repositories  {row['url']}"
        )


def _exit(shown: dict[str, Any], waited: bool) -> None:
    """0 when it is done (or, not waited for, under way), 1 when it failed or is still going."""
    ended_well = shown.get("state") == "done" or (not waited and shown.get("state") != "failed")
    raise typer.Exit(0 if ended_well else 1)


def _peer(plane: Any, name: str) -> Any:
    from gitstore.cluster.api import Peer

    found = plane.node(name)
    if found is None or not found.alive:
        typer.echo(f"error: {'no node' if found is None else 'not answering: node'} {name!r}", err=True)
        raise typer.Exit(2)
    return Peer(CALLER, plane.secret(), found.name, found.url)


def _refused(answer: Any) -> None:
    if answer.status >= 400:
        body = answer.body if isinstance(answer.body, dict) else {}
        typer.echo(f"error: {body.get('detail', answer.body)}", err=True)
        raise typer.Exit(2)


def _follow(peer: Any, path: str, first: dict[str, Any], wait: bool, timeout: float, json: bool, line: Any) -> Any:
    """Poll `path` on `peer` until the state is done or failed, printing each new line; the last
    status (printed as JSON with `json`)."""
    shown, last = first, ""
    deadline = time.monotonic() + timeout
    while wait and shown.get("state") not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.25)
        answer = peer.call("GET", path)
        if answer.status == 200 and isinstance(answer.body, dict):
            shown = answer.body
        if not json and (now := line(shown)) != last:
            typer.echo(now)
            last = now
    if json:
        typer.echo(orjson.dumps(shown).decode())
    elif not wait:
        typer.echo(line(shown))
    return shown


def _move_line(status: dict[str, Any]) -> str:
    rounds = status.get("rounds") or []
    text = f"{status['repository']}: {status['source']} -> {status['target']}: {status['state']}"
    if rounds:
        text += f" (round {len(rounds)}: {rounds[-1]['refs_moved']} refs moved)"
    if status.get("pause_seconds") is not None and status["state"] in ("flipped", "done"):
        text += f", writes paused {status['pause_seconds']:.3f} s"
    return text + (f": {status['error']}" if status.get("error") else "")


def _drain_line(status: dict[str, Any]) -> str:
    moves = status.get("moves") or []
    text = f"draining {status['node']}: {status['state']}, {len(moves)} moved"
    if moves:
        text += f" (last: {moves[-1]['repository']} to {moves[-1]['target']}, {moves[-1]['state']})"
    return text + (f": {status['error']}" if status.get("error") else "")
