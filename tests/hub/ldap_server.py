"""A throw-away OpenLDAP server (Debian's ``slapd``) for the LDAP login tests.

:func:`start_slapd` writes a ``slapd.conf`` (mdb backend in a temporary
directory), loads people and groups with ``slapadd``, and starts
``/usr/sbin/slapd`` on ``ldap://127.0.0.1:<free port>``; :meth:`Slapd.stop`
ends it. A missing slapd is an error, never a skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class Slapd:
    process: subprocess.Popen
    url: str

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
    config = directory / "slapd.conf"
    config.write_text(_CONFIG.format(directory=directory, suffix=SUFFIX), encoding="utf-8")
    (directory / "entries.ldif").write_text(_entries(), encoding="utf-8")
    subprocess.run(
        ["/usr/sbin/slapadd", "-f", str(config), "-l", str(directory / "entries.ldif")],
        check=True,
        capture_output=True,
    )
    url = f"ldap://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(SLAPD), "-h", url, "-f", str(config), "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _wait_listening(process, url)
    return Slapd(process, url)


def _wait_listening(process: subprocess.Popen, url: str, attempts: int = 200) -> None:
    host, port = url.removeprefix("ldap://").split(":")
    for _ in range(attempts):
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited: {process.stderr.read().decode()}")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("slapd did not start listening")
