"""A throw-away OpenLDAP server (Debian's ``slapd``) for the LDAP login tests.

:func:`start_slapd` makes a test CA and a certificate for 127.0.0.1, writes a
``slapd.conf`` (mdb backend in a temporary directory, TLS with that
certificate), loads people and groups with ``slapadd``, and starts
``/usr/sbin/slapd`` on ``ldap://127.0.0.1:<free port>`` (StartTLS offered) and
``ldaps://127.0.0.1:<another>``; :meth:`Slapd.stop` ends it. A missing slapd
is an error, never a skip.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD = Path("/usr/sbin/slapd")
SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
SCIENTISTS = f"cn=scientists,ou=groups,{SUFFIX}"
SERVICE_DN = f"cn=reader,{SUFFIX}"
SERVICE_PASSWORD = "reader-secret"
#: (uid, password, member of SCIENTISTS)
PEOPLE_ENTRIES = [
    ("ada", "ada-directory-pw", True),
    ("grace", "grace-directory-pw", True),
    ("bert", "bert-directory-pw", False),
]

_CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {directory}/slapd.pid
TLSCACertificateFile {directory}/ca.pem
TLSCertificateFile {directory}/server.pem
TLSCertificateKeyFile {directory}/server.key
access to attrs=userPassword
    by anonymous auth
    by self write
    by * none
access to * by * read
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
directory {directory}/data
"""


def _entries() -> str:
    blocks = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {SERVICE_DN}\nobjectClass: person\ncn: reader\nsn: reader\n"
        f"userPassword: {SERVICE_PASSWORD}",
    ]
    for uid, password, _ in PEOPLE_ENTRIES:
        blocks.append(
            f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
            f"sn: {uid}\nuserPassword: {password}"
        )
    members = "\n".join(
        f"member: uid={uid},{PEOPLE}" for uid, _, inside in PEOPLE_ENTRIES if inside
    )
    blocks.append(f"dn: {SCIENTISTS}\nobjectClass: groupOfNames\ncn: scientists\n{members}")
    return "\n\n".join(blocks) + "\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write_certificates(directory: Path) -> None:
    """ca.pem (a test CA) and server.pem/server.key (127.0.0.1, signed by it)."""
    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _certificate("gilhub test CA", ca_key, "gilhub test CA", ca_key, ca=True)
    server = _certificate("127.0.0.1", server_key, "gilhub test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(server.public_bytes(pem))
    (directory / "server.key").write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@dataclass
class Slapd:
    process: subprocess.Popen
    url: str
    ldaps_url: str
    ca_file: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_slapd(directory: Path) -> Slapd:
    if not SLAPD.is_file() or shutil.which("slapadd", path="/usr/sbin") is None:
        raise RuntimeError(
            "the LDAP tests need OpenLDAP's slapd and slapadd (Debian: apt-get install slapd)"
        )
    (directory / "data").mkdir(parents=True)
    write_certificates(directory)
    config = directory / "slapd.conf"
    config.write_text(_CONFIG.format(directory=directory, suffix=SUFFIX), encoding="utf-8")
    (directory / "entries.ldif").write_text(_entries(), encoding="utf-8")
    subprocess.run(
        ["/usr/sbin/slapadd", "-f", str(config), "-l", str(directory / "entries.ldif")],
        check=True,
        capture_output=True,
    )
    url, ldaps_url = f"ldap://127.0.0.1:{free_port()}", f"ldaps://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(SLAPD), "-h", f"{url} {ldaps_url}", "-f", str(config), "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for address in (url, ldaps_url):
        _wait_listening(process, address)
    return Slapd(process, url, ldaps_url, directory / "ca.pem")


def _wait_listening(process: subprocess.Popen, url: str, attempts: int = 200) -> None:
    host, port = url.split("://")[1].split(":")
    for _ in range(attempts):
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited: {process.stderr.read().decode()}")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("slapd did not start listening")
