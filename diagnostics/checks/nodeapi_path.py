"""`node-api`, the Azure network path out of the node subnets: an NSG rule that denies what
nodes need (`nodeapi.nsg-blocks-egress`), a route to the API server with next hop None
(`nodeapi.route-blackhole`), and an Azure Firewall on the path that does not allow a required
endpoint (`nodeapi.firewall-rules-missing`). The evaluation lives in `diagnostics.netpath`."""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.netpath_common import (
    free_priority,
    name_of,
    paths,
    rg_of,
    sub_flag,
)
from diagnostics.checks.nodeapi_common import SCENARIO, cluster_of, egress_symptoms
from diagnostics.model import Finding, Severity, Step
from diagnostics.netpath.analysis import Flow, SubnetPath
from diagnostics.netpath.model import Firewall, FwCollection
from diagnostics.netpath.nsg import NsgVerdict
from diagnostics.resources import CLUSTER, EGRESS_ENDPOINTS, NETWORK

NSG_DOCS = (
    "https://learn.microsoft.com/en-us/azure/virtual-network/network-security-group-how-it-works"
)
ROUTE_DOCS = "https://learn.microsoft.com/en-us/azure/virtual-network/virtual-networks-udr-overview"
USES = ("endpointslices", "endpoints", EGRESS_ENDPOINTS, "pods", "nodes", "events")


def _nsg_destination(flow: Flow) -> str:
    """What an allow rule must name: the address, the endpoint's service tag, or Internet
    (NSGs cannot match FQDNs)."""
    t = flow.target
    if t.dst.ip:
        return f"{t.dst.ip}/32" if ":" not in t.dst.ip else f"{t.dst.ip}/128"
    return t.service_tag or "Internet"


def _public(cidr: str) -> bool:
    from diagnostics.netpath.match import is_public

    return is_public(cidr.split("/")[0])


def nsg_blocks_egress(ctx: CheckContext) -> Iterator[Finding]:
    blocked: dict[tuple[str, str], tuple[NsgVerdict, SubnetPath, list[Flow]]] = {}
    for sp in paths(ctx):
        for flow in sp.flows:
            v = flow.nsg_block
            if v is not None:
                key = (v.nsg.id.lower(), v.rule.name)
                entry = blocked.setdefault(key, (v, sp, []))
                if all(f.target.text != flow.target.text for f in entry[2]):
                    entry[2].append(flow)  # a subnet sharing the NSG adds nothing new
    symptoms = egress_symptoms(ctx.snapshot)
    for v, sp, flows in blocked.values():
        nsg, rule = v.nsg, v.rule
        where = (
            "on node subnet"
            if sp.subnet and sp.subnet.nsg_id.lower() == nsg.id.lower()
            else "on the node NICs of subnet"
        )
        evidence = [
            f"NSG {nsg.name} {where} {sp.name}: {'default ' if rule.default else ''}rule "
            f"{rule.name}, priority {rule.priority}, {rule.access} {rule.protocol} to "
            f"{', '.join(rule.destinations)} port {', '.join(rule.destination_ports)}"
        ]
        evidence += [f"it is the first match for {f.target.text} ({f.target.why})" for f in flows]
        evidence += symptoms
        rg, flag = q(rg_of(nsg.id)), sub_flag(nsg.id, ctx)
        used = {r.priority for r in nsg.rules if r.direction.lower() == "outbound"}
        prio = free_priority(used, rule.priority)
        first = flows[0]
        dests = sorted({_nsg_destination(f) for f in flows})
        if "Internet" in dests:
            dests = ["Internet", *(d for d in dests if d[0].isdigit() and not _public(d))]
        ports = sorted({str(f.target.port) for f in flows})
        proto = "Udp" if all(f.target.protocol == "UDP" for f in flows) else "Tcp"
        steps = []
        if prio is not None:
            steps.append(
                Step(
                    f"Allow it ahead of {rule.name}: a rule with a lower priority number ({prio}) "
                    "is evaluated first."
                    + (
                        " NSGs cannot match names: to restrict egress by FQDN, use a firewall."
                        if "Internet" in dests
                        else ""
                    ),
                    f"az network nsg rule create --resource-group {rg} --nsg-name {q(nsg.name)} "
                    f"--name {q('allow-aks-' + ports[0])} --priority {prio} --direction Outbound "
                    f"--access Allow --protocol {proto} --source-address-prefixes VirtualNetwork "
                    f"--destination-address-prefixes {' '.join(q(d) for d in dests)} "
                    f"--destination-port-ranges {' '.join(ports)}{flag}",
                )
            )
        if not rule.default:
            steps.append(
                Step(
                    f"Or remove {rule.name} if nothing needs it.",
                    f"az network nsg rule delete --resource-group {rg} --nsg-name {q(nsg.name)} "
                    f"--name {q(rule.name)}{flag}",
                )
            )
        steps.append(
            Step(
                "Check the rules in the order Azure applies them.",
                f"az network nsg rule list --resource-group {rg} --nsg-name {q(nsg.name)} "
                f"--include-default --query \"sort_by([?direction=='Outbound'], &priority)"
                f"[].{{name:name, priority:priority, access:access, protocol:protocol, "
                f'to:destinationAddressPrefix, ports:destinationPortRange}}" -o table{flag}',
            )
        )
        crit = any(f.target.critical for f in flows)
        yield Finding(
            code="nodeapi.nsg-blocks-egress",
            severity=Severity.CRITICAL if crit else Severity.WARNING,
            title=f"NSG {nsg.name} rule {rule.name} (priority {rule.priority}) denies "
            f"{first.target.text}" + (f" and {len(flows) - 1} more" if len(flows) > 1 else ""),
            subject=f"{nsg.id}#{rule.name}",
            evidence=tuple(evidence),
            cause="NSG rules apply in priority order and the first match wins: this deny comes "
            "before any allow for what the nodes need, so kubelets, the konnectivity agent "
            "or image pulls time out.",
            remediation=tuple(steps),
            docs=NSG_DOCS,
        )


def route_blackhole(ctx: CheckContext) -> Iterator[Finding]:
    for sp in paths(ctx):
        for flow in sp.flows:
            r = flow.route
            if r is None or r.hop.lower() != "none" or not flow.target.api_server:
                continue
            table = r.table
            evidence = [
                f"node subnet {sp.name}: {r.describe()}",
                f"the API server is {flow.target.text}",
                *egress_symptoms(ctx.snapshot),
            ]
            steps = []
            if table is not None:
                rg, flag = q(rg_of(table.id)), sub_flag(table.id, ctx)
                steps += [
                    Step(
                        "See the table's routes (longest prefix wins).",
                        f"az network route-table route list --resource-group {rg} "
                        f"--route-table-name {q(table.name)} -o table{flag}",
                    ),
                    Step(
                        f"Remove route {r.route.name}, or point it at your firewall "
                        "(`route update --next-hop-type VirtualAppliance --next-hop-ip-address IP`).",
                        f"az network route-table route delete --resource-group {rg} "
                        f"--route-table-name {q(table.name)} --name {q(r.route.name)}{flag}",
                    ),
                ]
            yield Finding(
                code="nodeapi.route-blackhole",
                severity=Severity.CRITICAL,
                title=f"The route to the API server from subnet {sp.name} drops the traffic "
                f"(next hop None)",
                subject=f"{table.id if table else sp.subnet_id}#{r.route.name}",
                evidence=tuple(evidence),
                cause="A route whose next hop type is None discards every packet it matches; "
                "it is the longest prefix match for the API server address.",
                remediation=tuple(steps),
                docs=ROUTE_DOCS,
            )


def _fix_steps(
    ctx: CheckContext, fw: Firewall, flows: list[Flow], prefixes: tuple[str, ...]
) -> list[Step]:
    net = ctx.snapshot.network
    assert net is not None
    sources = " ".join(q(p) for p in prefixes) or "VNET_PREFIX"
    names = [f for f in flows if f.target.dst.fqdn and f.target.protocol == "TCP"]
    others = [f for f in flows if f not in names]
    denies = [f.fw_verdict.collection for f in flows if f.fw_verdict and f.fw_verdict.collection]
    steps: list[Step] = []
    ext = "(`az network firewall` needs the azure-firewall extension: `az extension add --name azure-firewall`.)"
    if fw.policy_id:
        chain = net.policy_chain(fw.policy_id)
        deny: FwCollection | None = denies[0] if denies else None
        target_policy = None
        group = None
        if isinstance(chain, list) and chain:
            # a deny inherited from a base policy is overridden only there, before it
            target_policy = next((p for p in chain if deny and p.name == deny.policy), chain[-1])
            groups = [
                net.groups[g.lower()] for g in target_policy.group_ids if g.lower() in net.groups
            ]
            group = next((g for g in groups if deny and g.name == deny.group), None) or min(
                groups, key=lambda g: g.priority, default=None
            )
        if target_policy is None or group is None:
            return [
                Step(
                    "Add an application rule collection allowing the FQDN tag "
                    "AzureKubernetesService to the firewall's policy. " + ext
                )
            ]
        used = {c.priority for c in group.collections}
        below = deny.priority if deny and deny.group == group.name else 65001
        free = free_priority(used, below)
        if free is None and deny is not None:
            return [
                Step(
                    f"Collection {deny.name} in rule collection group {deny.group} of policy "
                    f"{deny.policy} denies it at priority {deny.priority}, and no priority "
                    "number is free before it: remove the endpoint from that collection or "
                    "move the collection to a higher number, then allow the FQDN tag "
                    f"AzureKubernetesService before it. {ext}"
                )
            ]
        prio = free or 100
        rg, flag = q(rg_of(target_policy.id)), sub_flag(target_policy.id, ctx)
        base = (
            f"az network firewall policy rule-collection-group collection add-filter-collection "
            f"--resource-group {rg} --policy-name {q(target_policy.name)} --rcg-name {q(group.name)}"
        )
        if names:
            extra = sorted(
                {
                    f.target.dst.fqdn if f.target.api_server else f.target.dst.label
                    for f in names
                    if not _in_tag(f)
                }
            )
            steps.append(
                Step(
                    f"Allow what AKS needs in policy {target_policy.name}, rule collection group "
                    f"{group.name} (priority {prio}{', before the deny' if deny else ''}). {ext}",
                    f"{base} --name aks-required --collection-priority {prio} --action Allow "
                    f"--rule-name aks-fqdn-tag --rule-type ApplicationRule --source-addresses {sources} "
                    f"--protocols Https=443 --fqdn-tags AzureKubernetesService{flag}"
                    + (f" --target-fqdns {' '.join(q(n) for n in extra)}" if extra else ""),
                )
            )
        for f in others:
            t = f.target
            steps.append(
                Step(
                    f"Allow {t.text} ({t.why}) with a network rule.",
                    f"{base} --name {q('aks-' + str(t.port))} --collection-priority {max(100, prio - 1)} "
                    f"--action Allow --rule-name {q('aks-' + str(t.port))} --rule-type NetworkRule "
                    f"--source-addresses {sources} --ip-protocols {t.protocol} TCP "
                    f"--destination-addresses {q(t.dst.ip or t.dst.fqdn)} --destination-ports {t.port}{flag}",
                )
            )
        return steps
    rg, flag = q(rg_of(fw.id)), sub_flag(fw.id, ctx)
    used = {c.priority for c in fw.collections}
    prio = free_priority(used, min((c.priority for c in denies), default=65001)) or 100
    steps.append(
        Step(
            f"Allow what AKS needs on firewall {fw.name} (classic rules). {ext}",
            f"az network firewall application-rule create --resource-group {rg} --firewall-name "
            f"{q(fw.name)} --collection-name aks-required --priority {prio} --action Allow "
            f"--name aks-fqdn-tag --protocols Https=443 --source-addresses {sources} "
            f"--fqdn-tags AzureKubernetesService{flag}",
        )
    )
    return steps


def _in_tag(flow: Flow) -> bool:
    from diagnostics.netpath.firewall import AKS_TAG_FQDNS
    from diagnostics.netpath.match import fqdn_matches

    return any(fqdn_matches(p, flow.target.dst.fqdn) for p in AKS_TAG_FQDNS)


def firewall_rules_missing(ctx: CheckContext) -> Iterator[Finding]:
    by_fw: dict[str, tuple[Firewall, SubnetPath, list[Flow]]] = {}
    for sp in paths(ctx):
        for flow in sp.flows:
            if flow.firewall is None or flow.fw_verdict is None or flow.fw_verdict.allowed:
                continue
            if flow.nsg_block is not None:
                continue  # the NSG drops it first: that finding names the cause
            by_fw.setdefault(flow.firewall.id.lower(), (flow.firewall, sp, []))[2].append(flow)
    for fw, sp, flows in by_fw.values():
        crit = any(f.target.critical for f in flows)
        policy = name_of(fw.policy_id) if fw.policy_id else "classic rules"
        evidence = [
            f"node subnet {sp.name} routes to Azure Firewall {fw.name} "
            f"({flows[0].appliance_ip}, {'policy ' + policy if fw.policy_id else policy})"
        ]
        evidence += [
            f"{f.target.text} ({f.target.why}): {f.fw_verdict.describe()}"
            for f in flows
            if f.fw_verdict
        ]
        evidence += egress_symptoms(ctx.snapshot)
        prefixes = sp.subnet.prefixes if sp.subnet else ()
        net, c = ctx.snapshot.network, cluster_of(ctx)
        pod_subnets = (
            [net.subnet(p.pod_subnet_id) for p in c.agent_pools if p.pod_subnet_id] if net else []
        )
        prefixes += tuple(p for s in pod_subnets if s for p in s.prefixes if p not in prefixes)
        yield Finding(
            code="nodeapi.firewall-rules-missing",
            severity=Severity.CRITICAL if crit else Severity.WARNING,
            title=f"Azure Firewall {fw.name} does not allow {flows[0].target.text}"
            + (f" and {len(flows) - 1} more required endpoint(s)" if len(flows) > 1 else ""),
            subject=f"{fw.id}#aks-egress",
            evidence=tuple(evidence),
            cause="Azure Firewall denies what no rule allows. Without these endpoints nodes "
            "cannot reach the API server, pull system images or authenticate, so they go "
            "NotReady and new nodes cannot join.",
            remediation=tuple(_fix_steps(ctx, fw, flows, prefixes)),
            docs=DOCS["egress"],
        )


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.nsg_egress",
        scenario=SCENARIO,
        codes=("nodeapi.nsg-blocks-egress",),
        fn=nsg_blocks_egress,
        needs=(CLUSTER, NETWORK),
        uses=USES,
    ),
    Check(
        name="nodeapi.route_blackhole",
        scenario=SCENARIO,
        codes=("nodeapi.route-blackhole",),
        fn=route_blackhole,
        needs=(CLUSTER, NETWORK),
        uses=USES,
    ),
    Check(
        name="nodeapi.firewall_rules",
        scenario=SCENARIO,
        codes=("nodeapi.firewall-rules-missing",),
        fn=firewall_rules_missing,
        needs=(CLUSTER, NETWORK),
        uses=USES,
    ),
)
