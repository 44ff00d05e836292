"""A dev node for the measuring scripts (timing_oracle.py, abuse.py): started on a free
loopback port with a temporary data folder, stopped (SIGTERM, then SIGKILL after a
bound) by whoever started it, and a few helpers to talk to it. Python 3 stdlib only.

Binaries: $EBILL_BIN_DIR, else $CARGO_TARGET_DIR/release, else
/var/tmp/ebill-target-release/release (where scripts/bench.sh builds). With --build
the scripts run `cargo build --release --locked -p ebill-node -p ebill-client` first.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", "/var/tmp/ebill-target-release")


def bin_dir():
    return os.environ.get("EBILL_BIN_DIR", os.path.join(target_dir(), "release"))


def build():
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir())
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-p", "ebill-node", "-p", "ebill-client"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def binary(name):
    path = os.path.join(bin_dir(), name)
    if not os.access(path, os.X_OK):
        sys.exit(f"{path} not found: build it (--build) or set EBILL_BIN_DIR")
    return path


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class DevNode:
    """`ebill-node --dev` on 127.0.0.1:<free port>, data in a temporary folder.

    Use as a context manager: the node is stopped and the folder removed on exit,
    whatever happened inside."""

    def __init__(self, config_toml="", log_level="warn,ebill_node=info"):
        self.dir = tempfile.mkdtemp(prefix="ebill-script-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_toml = config_toml
        self.log_level = log_level
        self.proc = None

    def __enter__(self):
        args = [
            binary("ebill-node"),
            "--dev",
            "--data",
            os.path.join(self.dir, "data"),
            "--api",
            f"127.0.0.1:{self.port}",
        ]
        if self.config_toml:
            path = os.path.join(self.dir, "node.toml")
            with open(path, "w") as f:
                f.write(self.config_toml)
            args += ["--config", path]
        self.log = open(os.path.join(self.dir, "node.log"), "w")
        env = dict(os.environ, RUST_LOG=self.log_level)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                self.stop()
                sys.exit(f"ebill-node exited with {self.proc.returncode}: see its log above")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                sys.exit(f"ebill-node did not answer within {START_TIMEOUT_S} s")
            time.sleep(0.1)

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.returncode not in (0, None):
            self.log.flush()
            with open(os.path.join(self.dir, "node.log")) as f:
                tail = f.readlines()[-20:]
            sys.stderr.write("ebill-node log (last lines):\n" + "".join(tail))
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ebill(self, *args):
        """Runs the `ebill` client against this node with --json; returns its JSON."""
        out = subprocess.run(
            [binary("ebill"), "--node", self.url, "--json", *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            sys.exit(f"ebill {' '.join(args)} failed: {out.stdout}{out.stderr}")
        return json.loads(out.stdout)

    def dev_keys(self):
        keys = os.path.join(self.dir, "keys")
        if not os.path.exists(keys):
            self.ebill("dev-keys", "--out", keys)
        return keys

    def issue_sample_bill(self):
        """Issues genesis/examples/bill.json (issued now), waits until final; returns
        (code, number, check_code)."""
        keys = self.dev_keys()
        v = self.ebill(
            "issue",
            "--key",
            os.path.join(keys, "issuer.key"),
            "--now",
            os.path.join(ROOT, "genesis", "examples", "bill.json"),
        )
        return v["code"], v["number"], v["check_code"]

    def get_json(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())


class KeepAlive:
    """One keep-alive HTTP/1.1 connection, with the least client work per request
    (the request bytes are built once by the caller), from `source` (an address of
    the loopback range)."""

    def __init__(self, port, source="127.0.0.1", timeout_s=10):
        self.port = port
        self.source = source
        self.timeout_s = timeout_s
        self.sock = None
        self.buf = b""

    def connect(self):
        self.close()
        s = socket.create_connection(
            ("127.0.0.1", self.port), timeout=self.timeout_s, source_address=(self.source, 0)
        )
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.buf = b""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _read_response(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server mid-body")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body

    def request(self, raw):
        """Sends `raw` (a whole request) and returns (status, body); reconnects once if
        the server had closed the idle connection."""
        for attempt in (0, 1):
            if self.sock is None:
                self.connect()
            try:
                self.sock.sendall(raw)
                return self._read_response()
            except (ConnectionError, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise ConnectionError("unreachable")


def get_request(path, host="127.0.0.1"):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
