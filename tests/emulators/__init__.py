"""Local emulators of the Kubernetes API server and Azure Resource Manager, on loopback, for
tests, benchmarks and the Slack-bot tests. Standard library only (TLS files come from trustme
through `emulators.tls`)."""

from .arm import AAD_TOKEN, ARM_TOKEN, IDENTITY_HEADER, ArmEmulator, rest_cluster
from .k8s_api import DEFAULT_TOKEN, KubeEmulator
from .tls import TlsFiles, make_tls

__all__ = [
    "AAD_TOKEN",
    "ARM_TOKEN",
    "DEFAULT_TOKEN",
    "IDENTITY_HEADER",
    "ArmEmulator",
    "KubeEmulator",
    "TlsFiles",
    "make_tls",
    "rest_cluster",
]
