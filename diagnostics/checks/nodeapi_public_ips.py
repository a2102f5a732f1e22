"""`node-api`: nodes with their own public IPs against the API server's authorized IP ranges.

A node with an instance-level public IP (`enableNodePublicIP`) leaves from that address, not
from the load balancer's outbound IPs that AKS allows by itself. AKS documents that such pools
must take their IPs from a public IP prefix (`nodePublicIPPrefixID`) and that the prefix must be
listed as an authorized range; without it the kubelets time out calling the public API server.
The prefix's CIDR comes from publicips.json (its resource id, lowercased -> "20.1.2.0/28").
"""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.authorized import covering, max_ranges, parse_ranges, replacement_list
from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER, PUBLIC_IPS
from diagnostics.snapshot import AgentPool, ClusterInfo

SCENARIO = "node-api"
CODE = "nodeapi.authorized-ip.node-public-ip"


def node_public_ips(ctx: CheckContext) -> Iterator[Finding]:
    c = ctx.snapshot.cluster
    assert c is not None  # guaranteed by needs=(CLUSTER,)
    if c.private_cluster or not c.authorized_ip_ranges:
        return
    ranges, _ = parse_ranges(c.authorized_ip_ranges)
    for pool in c.agent_pools:
        if not pool.node_public_ip:
            continue
        prefix = pool.node_public_ip_prefix_id
        cidr = ctx.snapshot.public_ips.get(prefix.lower(), "") if prefix else ""
        if prefix and not cidr:
            yield _finding(
                ctx,
                c,
                pool,
                Severity.INFO,
                "its public IP prefix is not resolved here",
                [f"nodePublicIPPrefixID = {prefix}: no address in publicips.json"],
                [
                    Step(
                        "Look the prefix up, then compare it with the authorized ranges.",
                        f"az network public-ip prefix show --ids {q(prefix)} --query ipPrefix -o tsv",
                    )
                ],
            )
        elif prefix and covering(cidr, ranges) is None:
            new_list = replacement_list(c.authorized_ip_ranges, [cidr])
            steps = [
                Step(
                    "Add the prefix to the authorized ranges (the flag replaces the whole list, "
                    "so the command repeats every existing range).",
                    ctx.az_aks("update", f"--api-server-authorized-ip-ranges {q(new_list)}"),
                )
            ]
            if len(new_list.split(",")) > max_ranges(c.vnet_integration):
                steps.append(Step("Merge ranges first: AKS limits how many it accepts."))
            yield _finding(
                ctx,
                c,
                pool,
                Severity.WARNING,
                f"its prefix {cidr} is not an authorized range",
                [f"nodePublicIPPrefixID {prefix.rsplit('/', 1)[-1]} = {cidr}: in none of them"],
                steps,
            )
        elif not prefix:
            yield _finding(
                ctx,
                c,
                pool,
                Severity.WARNING,
                "its node public IPs come from no prefix",
                [
                    "enableNodePublicIP = true without nodePublicIPPrefixID: each node gets an "
                    "address no authorized range can list in advance"
                ],
                [
                    Step(
                        "Create a public IP prefix, then a pool that takes its node IPs from it, "
                        "list the prefix as an authorized range, and move the workloads.",
                        f"az aks nodepool add --resource-group {ctx.rg} --cluster-name {ctx.name} "
                        f"--name newpool --enable-node-public-ip --node-public-ip-prefix-id "
                        f"{q(_prefix_id(c))}",
                    )
                ],
            )


def _prefix_id(c: ClusterInfo) -> str:
    sub = c.subscription or "SUBSCRIPTION_ID"
    rg = c.node_resource_group or c.resource_group or "RESOURCE_GROUP"
    return (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/"
        "publicIPPrefixes/NODE_IP_PREFIX"
    )


def _finding(
    ctx: CheckContext,
    c: ClusterInfo,
    pool: AgentPool,
    severity: Severity,
    what: str,
    evidence: list[str],
    steps: list[Step],
) -> Finding:
    return Finding(
        code=CODE,
        severity=severity,
        title=f"Node pool {pool.name} has node public IPs: {what}",
        subject=f"{c.id or c.name}/agentPools/{pool.name}#node-public-ip",
        evidence=(
            f"agentPoolProfiles[{pool.name}].enableNodePublicIP = true: its nodes reach the "
            "public API server from their own public IPs",
            *evidence,
            f"authorized IP ranges ({len(c.authorized_ip_ranges)}): "
            + ", ".join(c.authorized_ip_ranges),
        ),
        cause="AKS allows the standard load balancer's outbound IPs by itself, not the "
        "addresses of nodes with their own public IPs: their kubelets and pods time out "
        "calling the API server unless the pool's public IP prefix is an authorized range.",
        remediation=(
            Step(
                "Confirm the ranges the API server accepts now.",
                ctx.az_aks("show", "--query apiServerAccessProfile.authorizedIpRanges"),
            ),
            *steps,
        ),
        docs=DOCS["authorized-ip"],
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.node_public_ips",
        scenario=SCENARIO,
        codes=(CODE,),
        fn=node_public_ips,
        needs=(CLUSTER,),
        uses=(PUBLIC_IPS,),
    ),
)
