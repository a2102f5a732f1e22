"""A throwaway certificate authority (trustme) and a loopback server certificate for the
emulators, written to files as servers and clients want them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: Path  # trust this (kubeconfig certificate-authority, connection_verify)
    server_pem: Path  # key + certificate chain for the emulator (certfile=)

    @property
    def ca_data(self) -> str:
        """The CA as kubeconfig `certificate-authority-data` (base64 PEM)."""
        return base64.b64encode(self.ca_pem.read_bytes()).decode()


def make_tls(folder: str | Path) -> TlsFiles:
    import trustme

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(root / "ca.pem", root / "server.pem")
    ca.cert_pem.write_to_path(str(files.ca_pem))
    cert.private_key_and_cert_chain_pem.write_to_path(str(files.server_pem))
    return files
