"""Commands that look at or act on one AKS node from outside the cluster, shared by every
scenario: run a read-only script through the VM agent (`az vmss run-command invoke`), open a node
debug pod, and replace a broken node the way AKS supports.

AKS nodes are scale set instances. A Linux node's name is its scale set's computer-name prefix
plus the instance id in base 36 (`aks-nodepool1-12345678-vmss00000a` -> scale set
`aks-nodepool1-12345678-vmss`, instance 10); a Windows node's name is shortened (`aksnpwin000000`)
and only `spec.providerID` names its scale set. Windows runs PowerShell, not a shell.
Reimaging or deleting instances with `az vmss` directly is unsupported on AKS (the support policy
forbids changing IaaS resources of the node resource group): nodes are replaced with
`az aks nodepool delete-machines` or a node image upgrade.
"""

from __future__ import annotations

import re

from diagnostics.checks.base import CheckContext, q
from diagnostics.model import Step
from diagnostics.snapshot import AgentPool

DEBUG_IMAGE = "mcr.microsoft.com/azurelinux/busybox:1.36"
SUPPORT_POLICY = "https://learn.microsoft.com/en-us/azure/aks/support-policies"
_VMSS_NAME = re.compile(r"^(aks-[a-z0-9]+-[0-9]+-vmss)([0-9a-z]{6})$")
_PROVIDER = re.compile(
    r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute/"
    r"(?:virtualMachineScaleSets/(?P<vmss>[^/]+)/virtualMachines/(?P<instance>\d+)"
    r"|virtualMachines/(?P<vm>[^/]+))$",
    re.IGNORECASE,
)
OUTPUT = "--query 'value[0].message' -o tsv"  # the script's output, not run-command's JSON


def node_rg(ctx: CheckContext) -> str:
    c = ctx.snapshot.cluster
    return q(c.node_resource_group) if c and c.node_resource_group else "NODE_RESOURCE_GROUP"


def is_windows(ctx: CheckContext, node: str) -> bool:
    n = ctx.snapshot.nodes_by_name.get(node)
    return n is not None and n.os == "windows"


def vm_target(ctx: CheckContext, node: str) -> tuple[str, str, str | None] | None:
    """(resource group, scale set or VM name, instance id or None for a VM) of a node; None
    when neither its name nor its providerID says."""
    m = _VMSS_NAME.match(node)
    if m:
        return node_rg(ctx), m.group(1), str(int(m.group(2), 36))
    n = ctx.snapshot.nodes_by_name.get(node)
    p = _PROVIDER.search(n.provider_id) if n and n.provider_id else None
    if p is None:
        return None
    rg = node_rg(ctx) if ctx.snapshot.cluster else q(p["rg"])
    if p["vmss"]:
        return rg, p["vmss"], p["instance"]
    return rg, p["vm"], None


def run_on_node(
    ctx: CheckContext, node: str, script: str, powershell: str | None = None
) -> str | None:
    """A read-only command that runs `script` (Linux) or `powershell` (Windows) on the node
    through the VM agent and prints the script's output; None when the node cannot be located
    or is Windows and no PowerShell equivalent is given."""
    target = vm_target(ctx, node)
    windows = is_windows(ctx, node)
    if target is None or (windows and powershell is None):
        return None
    rg, name, instance = target
    head = (
        f"az vmss run-command invoke --resource-group {rg} --name {q(name)} "
        f"--instance-id {instance}"
        if instance is not None
        else f"az vm run-command invoke --resource-group {rg} --name {q(name)}"
    )
    if windows:
        return f"{head} --command-id RunPowerShellScript --scripts {q(powershell)} {OUTPUT}"
    return f"{head} --command-id RunShellScript --scripts {q(script)} {OUTPUT}"


def debug_pod_command(node: str) -> str:
    """A privileged node debug pod (creates a pod object; `chroot /host` inside it)."""
    return f"kubectl debug node/{q(node)} -it --image={DEBUG_IMAGE}"


def replace_node_steps(ctx: CheckContext, node: str) -> list[Step]:
    """Replace a broken node the supported way: delete that machine (the pool's autoscaler or
    a scale brings a fresh one) or upgrade the pool's node image (reimages every node)."""
    n = ctx.snapshot.nodes_by_name.get(node)
    m = _VMSS_NAME.match(node)
    pool = n.agent_pool if n and n.agent_pool else (m.group(1).split("-")[1] if m else "")
    pool_arg = q(pool) if pool else "NODEPOOL"
    base = f"--resource-group {ctx.rg} --cluster-name {ctx.name} --name {pool_arg}"
    return [
        Step(
            "Delete just this machine (AKS removes the VM and the node; scale the pool back up, "
            "or let the autoscaler do it). Reimaging the instance with `az vmss` directly is "
            f"unsupported on AKS ({SUPPORT_POLICY}).",
            f"az aks nodepool delete-machines {base} --machine-names {q(node)}",
        ),
        Step(
            "Or reimage every node of the pool in a rolling way with a node image upgrade.",
            f"az aks nodepool upgrade {base} --node-image-only",
        ),
    ]


NEW_POOL = "newpool"  # az accepts lowercase letters and digits only (Windows: up to 6)


def sibling_subnet(subnet_id: str, name: str = "NEW_SUBNET") -> str:
    """A new subnet's id in the same virtual network (az wants a resource id, not a word)."""
    return subnet_id.rsplit("/", 1)[0] + "/" + name


def add_pool_command(
    ctx: CheckContext, like: AgentPool | None, extra: str = "", new_subnet: str = ""
) -> str | None:
    """`az aks nodepool add` for a pool like `like`, on its subnets or, with `new_subnet`
    ("node" or "pod"), on a new one in the same virtual network. None when a new node subnet is
    asked for on the AKS-managed virtual network (it takes no subnet of yours), or for an
    unknown pool."""
    parts = [
        f"az aks nodepool add --resource-group {ctx.rg} --cluster-name {ctx.name} --name {NEW_POOL}"
    ]
    if like is not None:
        if like.vnet_subnet_id:
            node_subnet = like.vnet_subnet_id
            if new_subnet == "node":
                node_subnet = sibling_subnet(node_subnet, "NEW_NODE_SUBNET")
            parts.append(f"--vnet-subnet-id {q(node_subnet)}")
        elif new_subnet == "node":
            return None
        if like.pod_subnet_id:
            pod_subnet = like.pod_subnet_id
            if new_subnet == "pod":
                pod_subnet = sibling_subnet(pod_subnet, "NEW_POD_SUBNET")
            parts.append(f"--pod-subnet-id {q(pod_subnet)}")
            if like.pod_ip_allocation_mode:
                parts.append(f"--pod-ip-allocation-mode {q(like.pod_ip_allocation_mode)}")
        if like.vm_size:
            parts.append(f"--node-vm-size {q(like.vm_size)}")
        if like.os_type.lower() == "windows":
            parts[0] = parts[0].replace(f"--name {NEW_POOL}", "--name npwin2")
            parts.append("--os-type Windows")
    if extra:
        parts.append(extra)
    return " ".join(parts)
