"""Route selection as Azure does it: longest prefix match over the subnet's route table and the
system routes (the VNet's own space -> VnetLocal, peered VNets -> VNetPeering, 0.0.0.0/0 ->
Internet); a user route beats a system route of the same prefix, and an explicit prefix beats
a service-tag route. A destination known only by name (an FQDN) follows the routes every
address matches: 0.0.0.0/0 and service-tag routes of its tags."""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.netpath.match import Endpoint, network
from diagnostics.netpath.model import Route, RouteTable


@dataclass(frozen=True, slots=True)
class RouteChoice:
    route: Route
    table: RouteTable | None  # None: a system route

    @property
    def hop(self) -> str:
        return self.route.next_hop_type

    def describe(self) -> str:
        r = self.route
        via = f" {r.next_hop_ip}" if r.next_hop_ip else ""
        where = f"route table {self.table.name}: route {r.name}" if self.table else "system route"
        return f"{where} {r.prefix} -> {r.next_hop_type}{via}"


def _length(prefix: str, dst: Endpoint) -> float | None:
    """The match length of `prefix` for `dst` (higher wins), None when it does not match."""
    n = network(prefix)
    if n is None:  # a service tag route: below any explicit prefix of the same reach
        return 0.5 if prefix.lower() in dst.tags else None
    if n.prefixlen == 0:
        return 0.0 if dst.ip == "" or network(dst.ip).version == n.version else None  # type: ignore[union-attr]
    return float(n.prefixlen) if dst.ip and dst.matches_prefix(prefix) else None


def choose(
    table: RouteTable | None,
    vnet_space: tuple[str, ...],
    peered_space: tuple[str, ...],
    dst: Endpoint,
) -> RouteChoice:
    best: tuple[float, int, RouteChoice] | None = None
    system = [Route("VNet", p, "VnetLocal") for p in vnet_space]
    system += [Route("peering", p, "VNetPeering") for p in peered_space]
    system += [Route("default", "0.0.0.0/0", "Internet"), Route("default", "::/0", "Internet")]
    candidates: list[tuple[Route, RouteTable | None, int]] = [(r, None, 0) for r in system]
    if table is not None:
        candidates += [(r, table, 1) for r in table.routes]
    for route, tbl, user in candidates:
        length = _length(route.prefix, dst)
        if length is None:
            continue
        key = (length, user)
        if best is None or key > best[:2]:
            best = (length, user, RouteChoice(route, tbl))
    assert best is not None  # a default route always matches
    return best[2]
