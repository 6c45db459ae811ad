"""HTTPS for the hub: its TLS context, and a self-signed certificate for a lab PC.

``gilhub --ssl-cert=hub.crt --ssl-key=hub.key`` serves pages, API and proxy over
HTTPS (cookies then carry ``Secure``, and pages send ``Strict-Transport-Security``).
Where no certificate authority is at hand, ``gilhub make-cert`` writes a self-signed
certificate for the machine's names and addresses; browsers warn once about it, and
from then on passwords and cookies no longer travel in clear on the lab's network.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import sys
from pathlib import Path

from traitlets import Integer, List, Unicode
from traitlets.config import Application

from gilhub import __version__


class CertificateError(ValueError):
    """The certificate or key cannot be used; the message says why in one line."""


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or newer) with the certificate chain ``cert``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        message = f"cannot use the certificate {cert} with key {key}: {error}"
        raise CertificateError(message) from error
    return context


def write_self_signed(cert_path: Path, key_path: Path, names: list[str], days: int = 825) -> None:
    """Write a self-signed certificate valid for ``names`` (host names or IP addresses)
    and its private key (readable by its owner only)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key_bytes)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _general_name(name: str):  # noqa: ANN202 (cryptography's GeneralName union)
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def default_names() -> list[str]:
    """This machine's host name (short and fully qualified), localhost and loopback."""
    names = [socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1"]
    return list(dict.fromkeys(name for name in names if name))


class MakeCertApp(Application):
    name = "make-cert"
    version = __version__
    description = """Write a self-signed certificate and key for serving the hub over HTTPS
    (gilhub --ssl-cert=CERT --ssl-key=KEY). Browsers ask once to accept it."""
    examples = "gilhub make-cert --name=labpc.example.org --name=192.168.1.20"
    aliases = {
        "cert": "MakeCertApp.cert",
        "key": "MakeCertApp.key",
        "name": "MakeCertApp.names",
        "days": "MakeCertApp.days",
    }
    cert = Unicode("gilhub.crt", config=True, help="Where to write the certificate.")
    key = Unicode("gilhub.key", config=True, help="Where to write the private key.")
    names = List(
        Unicode(),
        config=True,
        help="Host names and IP addresses the certificate is for (default: this machine's).",
    )
    days = Integer(825, config=True, help="How many days the certificate is valid.")

    def start(self) -> None:
        cert, key = Path(self.cert), Path(self.key)
        for path in (cert, key):
            if path.exists():
                print(f"gilhub make-cert: {path} exists; not overwriting it.", file=sys.stderr)
                self.exit(1)
        names = self.names or default_names()
        write_self_signed(cert, key, names, self.days)
        print(f"Wrote {cert} and {key} for {', '.join(names)}. Start the hub with")
        print(f"  gilhub --ssl-cert={cert} --ssl-key={key}")
