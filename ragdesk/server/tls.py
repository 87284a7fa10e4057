"""TLS for the LAN endpoint: a self-signed identity kept in the vault, or the user's own.

On first use a P-256 key and a self-signed certificate (SANs: localhost, 127.0.0.1, ::1, the
host name and the host's current LAN addresses) are generated with `cryptography` and stored in
the vault (`Store.set_server_identity`); the private key is never written to disk in plaintext.

The certificate is a leaf, not a CA: CA:FALSE, key usage digitalSignature only, extended key
usage serverAuth. A client that pins it by importing it as a trust anchor (a browser's
certificate store, `verify=cert.pem`) trusts this one server certificate and nothing else: an
earlier version issued an unrestricted CA certificate, so whoever held the vault's key could
sign certificates for any site that such a client would accept. A vault still holding one gets
a new leaf on the next start (`vault_identity`, audited, with a warning that the fingerprint
changed).
`ssl.SSLContext.load_cert_chain` only reads files, so on Linux the PEMs are handed to it through
an anonymous memory file (`os.memfd_create`, read back as /proc/self/fd/N) that is closed at
once; where memfd does not exist (macOS, Windows) a private temporary file is written, read and
overwritten/removed immediately, and a warning says so.

The SHA-256 fingerprint of the certificate is what users compare to pin it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
import struct
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ragdesk.core.store.base import Sharing
from ragdesk.errors import RagdeskError

log = logging.getLogger("ragdesk.server.tls")

CERT_DAYS = 825  # the longest validity browsers accept for a server certificate


@dataclass(frozen=True)
class Identity:
    """A certificate chain and its key, as PEM text, with where they came from."""

    cert_pem: str
    key_pem: str
    source: str  # "vault" (generated, kept in the vault) | "files" (user-provided)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert_pem)

    @property
    def names(self) -> list[str]:
        """The DNS names and IP addresses the certificate is valid for."""
        cert = x509.load_pem_x509_certificate(self.cert_pem.encode())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return []
        return [str(n) for n in san.get_values_for_type(x509.DNSName)] + [
            str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def fingerprint(cert_pem: str) -> str:
    """SHA-256 of the DER certificate, as colon-separated upper-case hex (as browsers show it)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    digest = cert.fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def lan_addresses() -> list[str]:
    """This host's non-loopback IP addresses, read from the interfaces (no network traffic)."""
    found: list[str] = []
    if sys.platform.startswith("linux"):
        try:
            import fcntl

            for _, name in socket.if_nameindex():
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    try:
                        packed = fcntl.ioctl(s.fileno(), 0x8915,  # SIOCGIFADDR
                                             struct.pack("256s", name.encode()[:15]))
                    except OSError:
                        continue
                    found.append(socket.inet_ntoa(packed[20:24]))
        except (OSError, AttributeError):
            pass
        with contextlib.suppress(OSError):
            for line in Path("/proc/net/if_inet6").read_text().splitlines():
                raw = line.split()[0]
                found.append(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    out = []
    for a in dict.fromkeys(found):
        ip = ipaddress.ip_address(a)
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
            out.append(a)
    return out


def generate(hostnames: list[str] | None = None, addresses: list[str] | None = None) -> Identity:
    """A new P-256 key and a self-signed certificate for this host."""
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname() or "localhost"
    dns = list(dict.fromkeys(["localhost", *(hostnames or []), host]))
    lan = addresses if addresses is not None else lan_addresses()
    ips = list(dict.fromkeys(["127.0.0.1", "::1", *lan]))
    san = [x509.DNSName(n) for n in dns if n] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"RagDesk on {host}"[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "RagDesk (self-signed)"),
    ])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        # A leaf (module docstring): clients still pin it by its PEM (OpenSSL, Go and browsers
        # accept a self-signed leaf as its own trust anchor), but it can sign nothing.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()).decode(),
        "vault",
    )


def is_ca(cert_pem: str) -> bool:
    """Whether the (first) certificate may sign others (BasicConstraints CA:TRUE)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def vault_identity(store: Sharing) -> Identity:
    """The identity kept in the vault, generated and stored on first use; an old CA certificate
    (module docstring) is replaced by a leaf."""
    found = store.server_identity()
    if found is not None and not is_ca(found[0]):
        return Identity(found[0], found[1], "vault")
    identity = generate()
    store.set_server_identity(identity.cert_pem, identity.key_pem)
    if found is None:
        store.audit("server certificate created", fingerprint=identity.fingerprint)
        log.info("generated a self-signed certificate %s", identity.fingerprint)
    else:
        old = fingerprint(found[0])
        store.audit("server certificate replaced", fingerprint=identity.fingerprint, old_fingerprint=old,
                    reason="the old certificate was a CA certificate")
        log.warning("the vault's certificate was a CA certificate, which clients that trust it would "
                    "let sign any site: replaced by a server-only certificate. Its fingerprint changed "
                    "from %s to %s: clients that pinned the old one must pin the new one.",
                    old, identity.fingerprint)
    return identity


def file_identity(cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]) -> Identity:
    """A user-provided certificate (chain) and key; checked by loading them."""
    try:
        cert_pem = Path(cert_file).read_text(encoding="ascii")
        key_pem = Path(key_file).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise RagdeskError(f"cannot read the certificate or key: {exc}") from exc
    identity = Identity(cert_pem, key_pem, "files")
    server_context(identity)  # fails now, with a clear message, if they do not match
    return identity


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    """A path whose content is `data`, backed by memory only where the OS allows it."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("ragdesk-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    log.warning("no memory-backed files on this system: the TLS key passes through a private "
                "temporary file for an instant")
    fd, name = tempfile.mkstemp(prefix="ragdesk-tls-")
    try:
        os.write(fd, data)
        os.close(fd)
        yield name
    finally:
        with contextlib.suppress(OSError), open(name, "r+b") as f:
            f.write(b"\0" * len(data))
        with contextlib.suppress(OSError):
            os.remove(name)


def server_context(identity: Identity) -> ssl.SSLContext:
    """A server SSLContext (TLS 1.2+, modern ciphers) loaded from PEM text in memory."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    with _memory_file(identity.cert_pem.encode()) as cert_path, \
            _memory_file(identity.key_pem.encode()) as key_path:
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise RagdeskError("the certificate and key do not fit together or are not PEM "
                               f"({exc.reason})") from exc
    return ctx


def client_context(cert_pem: str) -> ssl.SSLContext:
    """A client SSLContext that trusts exactly this (self-signed) certificate: pinning."""
    ctx = ssl.create_default_context(cadata=cert_pem)
    return ctx
