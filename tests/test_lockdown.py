"""The local stack is locked down: only the S3 gateway, Redis, the API and
Flower answer, each only with its credentials; SeaweedFS's master, volume and
filer ports give nothing away without the stack's keys and certificate; the
data directory is its owner's alone; and no secret is on a command line."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chorus.lockdown import make_private
from chorus.ports import GRPC_OFFSET
from chorus.stack import Stack, StackConfig, weed_binary

needs_stack = pytest.mark.stack


# -- helpers ----------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(session id, command line) of a live process, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return None
    return int(fields[3]), cmdline


def _stack_processes(data_dir: Path) -> dict[int, str]:
    """pid → command line of every process of the stack: supervisord leads a
    session of its own (its pid file), and every service and their children run in it."""
    leaders = {int(path.read_text()) for path in (data_dir / "pids").glob("*.pid")}
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _proc_stat(int(entry.name))) and info[0] in leaders:
            found[int(entry.name)] = info[1]
    return found


@pytest.fixture(scope="module")
def weed(stack: dict[str, str]) -> dict[str, int]:
    """SeaweedFS's ports, as its command line gives them."""
    data_dir = Path(stack["CHORUS_DATA_DIR"])
    s3 = Stack(StackConfig(data_dir)).pid("s3")
    cmdline = Path(f"/proc/{s3}/cmdline").read_bytes().decode().split("\0")
    flags = dict(arg.lstrip("-").split("=", 1) for arg in cmdline if arg.startswith("-") and "=" in arg)
    return {name: int(flags[f"{name}.port"]) for name in ("master", "volume", "filer", "admin", "s3")}


@pytest.fixture(scope="module")
def stored(stack: dict[str, str], storage) -> Iterator[tuple[str, bytes]]:
    """An object written through the S3 gateway; random bytes, which SeaweedFS
    does not compress, so a leak of them would show verbatim."""
    key = f"jobs/lockdown-{uuid.uuid4().hex}/input"
    body = os.urandom(64 * 1024)
    storage.put_bytes(key, body, "application/octet-stream")
    yield key, body
    storage.delete_keys([key])


def _jwt(claims: dict, key: str) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signed = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return signed + "." + b64(hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest())


def _file_id(stack: dict[str, str], weed: dict[str, int], key: str) -> str:
    """The volume file id of an object's first chunk, asked of the filer over
    gRPC with the stack's own certificate (weed reads ./security.toml)."""
    data_dir = Path(stack["CHORUS_DATA_DIR"])
    done = subprocess.run(
        [weed_binary(), "shell", f"-master=127.0.0.1:{weed['master']}", f"-filer=127.0.0.1:{weed['filer']}"],
        input=f"fs.meta.cat /buckets/chorus/{key}\n", capture_output=True, text=True, timeout=60, check=False,
        cwd=data_dir / "weed",
    )
    found = re.search(r'"fileId":\s*"([^"]+)"', done.stdout)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    return found.group(1)


# -- SeaweedFS's own ports ----------------------------------------------------------


@needs_stack
def test_filer_and_master_http_answer_nothing(stack: dict[str, str], weed: dict[str, int], stored) -> None:
    key, body = stored
    job_dir = key.split("/")[1]
    json_accept = {"Accept": "application/json"}
    probes = {
        "filer listing": f"http://127.0.0.1:{weed['filer']}/buckets/chorus/jobs/",
        "filer bucket": f"http://127.0.0.1:{weed['filer']}/buckets/chorus/",
        "filer object": f"http://127.0.0.1:{weed['filer']}/buckets/chorus/{key}",
        "filer object metadata": f"http://127.0.0.1:{weed['filer']}/buckets/chorus/{key}?metadata=true",
        "master dir/status": f"http://127.0.0.1:{weed['master']}/dir/status",
        "master vol/status": f"http://127.0.0.1:{weed['master']}/vol/status",
        "master dir/lookup": f"http://127.0.0.1:{weed['master']}/dir/lookup?volumeId=1",
        "master dir/assign": f"http://127.0.0.1:{weed['master']}/dir/assign",
    }
    with httpx.Client(timeout=10, headers=json_accept) as client:
        for name, url in probes.items():
            response = client.get(url)
            assert response.status_code in (401, 403, 404), (name, response.status_code, response.text[:300])
            assert job_dir not in response.text and body[:64] not in response.content, name
            assert "fid" not in response.text and not response.headers.get("authorization"), name
        # Nor can anyone write through the filer.
        put = client.put(f"http://127.0.0.1:{weed['filer']}/buckets/chorus/jobs/planted", content=b"x")
        assert put.status_code in (401, 403, 404), put.text


@needs_stack
def test_volume_server_wants_a_signed_token(stack: dict[str, str], weed: dict[str, int], stored) -> None:
    key, body = stored
    file_id = _file_id(stack, weed, key)
    url = f"http://127.0.0.1:{weed['volume']}/{file_id}"
    read_key = json.loads((Path(stack["CHORUS_DATA_DIR"]) / "secrets.json").read_text())["weed_jwt_read_key"]
    claims = {"fid": file_id, "exp": int(time.time()) + 30}
    with httpx.Client(timeout=10) as client:
        for headers in ({}, {"Authorization": f"Bearer {_jwt(claims, 'not-the-key')}"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 401, response.text[:300]
            assert body[:64] not in response.content
        # The master hands out no token and redirects nowhere.
        lookup = client.get(f"http://127.0.0.1:{weed['master']}/dir/lookup", params={"fileId": file_id, "read": "yes"})
        assert lookup.status_code == 404 and not lookup.headers.get("authorization")
        assert client.get(f"http://127.0.0.1:{weed['master']}/{file_id}").status_code == 404
        # No write without a token either.
        assert client.post(url, files={"file": b"planted"}).status_code == 401
        # The same read, signed with the stack's key, gets the bytes: the file id is real.
        signed = client.get(url, headers={"Authorization": f"Bearer {_jwt(claims, read_key)}"})
        assert signed.status_code == 200 and signed.content == body


@needs_stack
def test_grpc_ports_want_the_stack_certificate(stack: dict[str, str], weed: dict[str, int], stored, tmp_path: Path) -> None:
    key, body = stored
    anonymous = ssl.create_default_context()
    anonymous.check_hostname = False
    anonymous.verify_mode = ssl.CERT_NONE
    for name, port in weed.items():
        with (
            socket.create_connection(("127.0.0.1", port + GRPC_OFFSET), timeout=5) as raw,
            pytest.raises((ssl.SSLError, ConnectionError)),
            anonymous.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            tls.recv(64)
            pytest.fail(f"{name} gRPC port {port + GRPC_OFFSET} took a TLS client without a certificate")

    # SeaweedFS's own tools, run by someone without the stack's security.toml:
    # a whole-volume backup over gRPC and a listing through the filer get nothing.
    file_id = _file_id(stack, weed, key)
    outsider = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run(
        [weed_binary(), "backup", f"-server=127.0.0.1:{weed['master']}", f"-volumeId={file_id.split(',')[0]}",
         "-collection=chorus", f"-dir={tmp_path}"],
        capture_output=True, cwd=tmp_path, env=outsider, timeout=60, check=False,
    )
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or body[:64] not in path.read_bytes(), path
    try:
        listing = subprocess.run(
            [weed_binary(), "shell", f"-master=127.0.0.1:{weed['master']}", f"-filer=127.0.0.1:{weed['filer']}"],
            input=f"fs.ls -l /buckets/chorus/{key.rsplit('/', 1)[0]}\n", capture_output=True, text=True,
            cwd=tmp_path, env=outsider, timeout=8, check=False,
        ).stdout
    except subprocess.TimeoutExpired as stuck:  # it keeps retrying the refused connection
        listing = (stuck.stdout or b"").decode(errors="replace") if isinstance(stuck.stdout, bytes) else stuck.stdout or ""
    assert key.split("/")[1] not in listing and "input" not in listing, listing[-1000:]


# -- the services people use: only with credentials -----------------------------------


@needs_stack
def test_s3_gateway_wants_its_key(stack: dict[str, str], storage, stored) -> None:
    key, body = stored
    endpoint = stack["CHORUS_S3_ENDPOINT"]
    with httpx.Client(timeout=10) as client:
        response = client.get(f"{endpoint}/chorus/{key}")
        assert response.status_code == 403 and body[:64] not in response.content
        for listing in (f"{endpoint}/chorus?list-type=2&prefix=jobs/", f"{endpoint}/"):
            response = client.get(listing)
            assert response.status_code == 403 and key not in response.text, (listing, response.status_code)
        # A presigned URL, which the API hands to clients, still works; a forged one does not.
        presigned = storage.presign(key)
        assert client.get(presigned).content == body
        # Flip the signature's first digit to a different one, so the forgery never equals the original.
        forged = re.sub(r"Signature=([0-9a-f])", lambda m: "Signature=" + ("1" if m[1] == "0" else "0"), presigned)
        assert forged != presigned and client.get(forged).status_code == 403


@needs_stack
def test_redis_flower_and_api_want_credentials(stack: dict[str, str]) -> None:
    host_port = stack["CHORUS_REDIS_URL"].rsplit("@", 1)[1].split("/")[0]
    host, port = host_port.rsplit(":", 1)
    once = Retry(NoBackoff(), 0)  # redis-py retries an AuthenticationError (a ConnectionError) by default
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=host, port=int(port), socket_timeout=5, retry=once).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=host, port=int(port), password="wrong", socket_timeout=5, retry=once).ping()
    flower = stack["CHORUS_FLOWER_URL"]
    assert httpx.get(f"{flower}/api/tasks", timeout=10).status_code == 401
    assert httpx.get(f"{flower}/api/tasks", auth=("chorus", "wrong"), timeout=10).status_code == 401
    auth = (stack["CHORUS_FLOWER_USER"], stack["CHORUS_FLOWER_PASSWORD"])
    assert httpx.get(f"{flower}/api/tasks", auth=auth, timeout=10).status_code == 200
    assert httpx.get(f"{stack['CHORUS_API_URL']}/v1/voices", timeout=10).status_code == 401


# -- files and command lines -------------------------------------------------------------


@needs_stack
def test_data_directory_is_private(stack: dict[str, str]) -> None:
    data_dir = Path(stack["CHORUS_DATA_DIR"])
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    wide = []
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            if stat.S_IMODE(mode) != 0o700:
                wide.append((str(path), oct(stat.S_IMODE(mode))))
        elif stat.S_IMODE(mode) & 0o077 and path.suffix != ".vif":
            wide.append((str(path), oct(stat.S_IMODE(mode))))
    # SeaweedFS chmods a volume's .vif (its metadata: version, size; no object
    # data) to 0644 itself; `chorus up` tightens those it finds, and a volume
    # grown later keeps its 0644 inside 0700 directories no one else can enter.
    assert not wide, wide

    # The files that matter, each 0600.
    expected = [
        "secrets.json", "stack.env", "redis/redis.conf", "weed/security.toml", "weed/weed.key",
        "logs/redis.log", "logs/s3.log", "logs/supervisord.log", "pids/supervisord.pid", "supervisord.conf",
    ]
    aof = [p for p in (data_dir / "redis").rglob("*.aof*") if p.is_file()]
    volumes = list((data_dir / "s3").glob("*.dat"))
    assert aof and volumes
    for path in [*(data_dir / name for name in expected), *aof, *volumes]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    # The SeaweedFS configuration holds every key the stack relies on.
    security = tomllib.loads((data_dir / "weed" / "security.toml").read_text())
    assert security["jwt"]["signing"]["key"] and security["jwt"]["signing"]["read"]["key"]
    assert security["jwt"]["filer_signing"]["key"] and security["jwt"]["filer_signing"]["read"]["key"]
    assert Path(security["grpc"]["ca"]).is_file() and Path(security["grpc"]["client"]["cert"]).is_file()


@needs_stack
def test_no_secret_on_a_command_line(stack: dict[str, str]) -> None:
    data_dir = Path(stack["CHORUS_DATA_DIR"])
    values = json.loads((data_dir / "secrets.json").read_text())
    secrets = set(values.values()) | {
        stack[name] for name in ("CHORUS_S3_ACCESS_KEY", "CHORUS_S3_SECRET_KEY", "CHORUS_FLOWER_PASSWORD", "CHORUS_API_KEY",
                                 "CHORUS_METRICS_TOKEN")
    }
    secrets.add(stack["CHORUS_REDIS_URL"].split("@")[0].rsplit(":", 1)[1])  # the password in the URL
    assert all(len(secret) >= 12 for secret in secrets)
    processes = _stack_processes(data_dir)
    services = set(Stack(StackConfig(data_dir)).running())
    assert {"redis", "s3", "api", "flower", "worker-jobs", "worker-webhooks", "worker-control", "beat"} <= services
    assert len(processes) > len(services)  # worker pool children and the like too
    leaks = [(pid, cmdline[:200]) for pid, cmdline in processes.items() for secret in secrets if secret in cmdline]
    assert not leaks, leaks


# -- tightening an older data directory ------------------------------------------------------


def test_make_private_tightens_what_the_stack_owns(tmp_path: Path) -> None:
    data_dir = tmp_path / "chorus"
    (data_dir / "redis").mkdir(parents=True)
    (data_dir / "s3" / "filerldb2").mkdir(parents=True)
    files = [
        data_dir / "redis" / "appendonly.aof", data_dir / "s3" / "chorus_1.dat", data_dir / "s3" / "filerldb2" / "000001.log",
        data_dir / "secrets.json", data_dir / "celerybeat-schedule.db",
    ]
    for path in files:
        path.write_text("x")
        path.chmod(0o644)
    for directory in (data_dir, data_dir / "redis", data_dir / "s3", data_dir / "s3" / "filerldb2"):
        directory.chmod(0o755)
    mine = data_dir / "notes.txt"  # not the stack's: left as it is
    mine.write_text("x")
    mine.chmod(0o644)

    make_private(data_dir)

    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (data_dir, data_dir / "redis", data_dir / "s3", data_dir / "s3" / "filerldb2"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE(mine.stat().st_mode) == 0o644
