"""What locks the local stack down: its secrets, private files and
directories, and SeaweedFS's own security.

Only the S3 gateway (access key), Redis (password), the API (API keys), its
/metrics (the metrics token) and Flower (basic auth) answer, and only with
credentials. SeaweedFS's master, volume and filer ports, which would serve
every object to anyone, run with its own security (``weed/security.toml``): no
HTTP API on the master and filer (``-disableHttp``), JWT-signed reads and
writes on the volume server, and mutual TLS on every gRPC port, all of them
bound to loopback whatever the listen address; what still answers without
credentials is status only (the master's cluster page, the volume server's
/status: volume ids, sizes, disk use), never an object, a name or a listing.
The data directory is 0700 with its files 0600 (every process starts with
umask 077), and no secret is ever on a command line.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from pathlib import Path

from chorus.tasks.state.keys import KEY_PREFIX

# Every process of the stack, and every file it writes, is its owner's alone.
UMASK = 0o077
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# What the stack keeps in its data directory; `chorus up` tightens the modes of
# these, whatever made them wider, and of nothing else there.
OWNED = (
    "pids", "logs", "redis", "s3", "weed", "secrets.json", "stack.env", "join.env", "celerybeat-schedule*",
    "supervisord.conf", "supervisor.sock",
)
# SeaweedFS components that serve or dial gRPC; each gets the stack's certificate.
WEED_GRPC = ("master", "volume", "filer", "s3", "admin", "worker", "msg_broker", "msg_agent", "mq", "client")


def load_secrets(data_dir: Path) -> dict[str, str]:
    """Credentials of the local stack, made once per data directory and kept
    in its secrets.json (mode 0600); one missing there is made and added."""
    path = data_dir / "secrets.json"
    values = json.loads(path.read_text()) if path.exists() else {}
    wanted = {
        "redis_password": lambda: secrets.token_urlsafe(24),
        "s3_access_key": lambda: "chorus" + secrets.token_hex(6),
        "s3_secret_key": lambda: secrets.token_urlsafe(30),
        "flower_password": lambda: secrets.token_urlsafe(16),
        "api_key": lambda: KEY_PREFIX + secrets.token_urlsafe(32),
        # The bearer token of the API's /metrics: on locally, for operators only.
        "metrics_token": lambda: secrets.token_urlsafe(32),
        # SeaweedFS's own JWT keys: volume server writes and reads, filer writes and reads.
        "weed_jwt_write_key": lambda: secrets.token_urlsafe(32),
        "weed_jwt_read_key": lambda: secrets.token_urlsafe(32),
        "weed_filer_jwt_write_key": lambda: secrets.token_urlsafe(32),
        "weed_filer_jwt_read_key": lambda: secrets.token_urlsafe(32),
    }
    missing = {name: make() for name, make in wanted.items() if name not in values}
    if missing:
        values.update(missing)
        write_private(path, json.dumps(values, indent=2))
    return values


def write_private(path: Path, text: str) -> None:
    """Write text to a file only its owner can read, from the first byte on
    (an existing file with a wider mode loses it too)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with open(descriptor, "w") as handle:
        os.fchmod(descriptor, PRIVATE_FILE)
        handle.write(text)


def make_private(data_dir: Path) -> None:
    """Directories 0700 and files 0600: the data directory and what the stack
    keeps in it (nothing else there). Links are not followed; a chmod the system
    refuses (another owner's file) is skipped."""
    data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    data_dir.chmod(PRIVATE_DIR)
    for pattern in OWNED:
        for top in data_dir.glob(pattern):
            paths = [top] + (list(top.rglob("*")) if top.is_dir() and not top.is_symlink() else [])
            for path in paths:
                if path.is_symlink():
                    continue
                try:
                    path.chmod(PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)
                except (PermissionError, FileNotFoundError):  # another owner's, or gone meanwhile
                    pass


def weed_security(keys: dict[str, str], tls: dict[str, Path]) -> str:
    """SeaweedFS's security.toml: JWT keys for the volume server and the filer,
    no volume UI, and mutual TLS on every gRPC port (one certificate for all;
    SeaweedFS checks the issuing CA, not host names)."""
    def q(value: object) -> str:
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string

    sections = {
        "jwt.signing": {"key": keys["weed_jwt_write_key"], "expires_after_seconds": 10},
        "jwt.signing.read": {"key": keys["weed_jwt_read_key"], "expires_after_seconds": 60},
        "jwt.filer_signing": {"key": keys["weed_filer_jwt_write_key"], "expires_after_seconds": 10},
        "jwt.filer_signing.read": {"key": keys["weed_filer_jwt_read_key"], "expires_after_seconds": 60},
        "access": {"ui": False},
        "filer.expose_directory_metadata": {"enabled": False},
        "grpc": {"ca": tls["ca"]},
        **{f"grpc.{name}": {"cert": tls["cert"], "key": tls["key"]} for name in WEED_GRPC},
    }
    lines = ["# Written by `chorus up` from secrets.json; read by `weed mini` from its working directory."]
    for section, values in sections.items():
        lines.append(f"\n[{section}]")
        for name, value in values.items():
            rendered = str(value).lower() if isinstance(value, bool) else str(value) if isinstance(value, int) else q(value)
            lines.append(f"{name} = {rendered}")
    return "\n".join(lines) + "\n"


def weed_certificates(directory: Path) -> dict[str, Path]:
    """A CA and one certificate signed by it, for SeaweedFS's gRPC mutual TLS.
    Made once per data directory (with the ``cryptography`` package); the CA's
    key is never written, so no other certificate can ever be signed by it."""
    tls = {"ca": directory / "ca.crt", "cert": directory / "weed.crt", "key": directory / "weed.key"}
    if all(path.exists() for path in tls.values()):
        return tls
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = {"not_valid_before": now - datetime.timedelta(minutes=5), "not_valid_after": now + datetime.timedelta(days=3650)}
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(subject_name=name("chorus-seaweedfs-ca"), issuer_name=name("chorus-seaweedfs-ca"),
                                public_key=ca_key.public_key(), serial_number=x509.random_serial_number(), **valid)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder(subject_name=name("chorus-seaweedfs"), issuer_name=ca.subject,
                                public_key=leaf_key.public_key(), serial_number=x509.random_serial_number(), **valid)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(tls["key"], leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
    write_private(tls["cert"], leaf.public_bytes(serialization.Encoding.PEM).decode())
    write_private(tls["ca"], ca.public_bytes(serialization.Encoding.PEM).decode())
    return tls
