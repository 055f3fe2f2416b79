"""A real mosquitto broker on a free loopback port, which a rig can stop and restart.

Persistence is on, so a consumer's QoS 1 session and its queued messages survive a
restart, as they do on a production broker.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None)


class Mosquitto:
    """`with Mosquitto() as broker:` ... `broker.stop()`, `broker.start()` (same port)."""

    def __init__(self, port: int | None = None, directory: str | None = None, *,
                 tls=None, users: dict[str, str] | None = None,
                 require_client_cert: bool = True, log_all: bool = False) -> None:
        exe = find_mosquitto()
        if exe is None:
            raise RuntimeError("mosquitto is not installed (./dev test installs it)")
        self.exe = exe
        self.port = port or free_port()
        self.dir = Path(directory or tempfile.mkdtemp(prefix="edge-mosquitto-"))
        self.conf = self.dir / "mosquitto.conf"
        self.tls = tls               # hil.certs.TlsFiles: mqtts with client certificates
        # as root, mosquitto would drop to user 'mosquitto', who cannot read our temp files
        listener = f"user {getpass.getuser()}\nlistener {self.port} 127.0.0.1\n"
        if tls is not None:
            listener += (f"cafile {tls.ca}\ncertfile {tls.server_cert}\nkeyfile {tls.server_key}\n"
                         f"require_certificate {str(require_client_cert).lower()}\n")
        auth = "allow_anonymous true\n"
        if users:                    # a password file: anonymous clients are refused
            passwd = self.dir / "passwd"
            passwd.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
            subprocess.run([shutil.which("mosquitto_passwd") or "mosquitto_passwd", "-U",
                            str(passwd)], check=True, capture_output=True)
            auth = f"allow_anonymous false\npassword_file {passwd}\n"
        self.conf.write_text(
            listener + auth + "persistence true\n"
            f"persistence_location {self.dir}/\nmax_queued_messages 0\nmax_inflight_messages 0\n"
            f"log_dest file {self.dir}/mosquitto.log\n"
            + ("log_type all\n" if log_all else ""))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 5.0) -> None:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited with {self.proc.returncode}; "
                                       f"see {self.dir}/mosquitto.log") from None
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout_s} s")

    def stop(self) -> None:
        """Graceful stop (SIGTERM): the broker saves its persistent sessions."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: the broker hangs with its sockets open (no RST), as a stalled host does."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after `freeze`."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        """The broker's log so far (with `log_all`, every packet it received or sent)."""
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the broker dies at once (sessions since its last save are lost)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
