"""Signing key files a start cannot use are named, and a key write that fails leaves no key file behind.

The broken files are real files on disk read by a real `tokenwise serve`; the failed write is a real
write refused by the kernel (RLIMIT_FSIZE, as a full disk would refuse it), in a child process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support.servers import free_port
from tokenwise.security.keys import KeyConfigurationError, KeyRing, generate_key_file

TOKENWISE = [sys.executable, "-m", "tokenwise"]


def serve_fails(data_dir: Path) -> str:
    """`tokenwise serve` (development) on `data_dir`, expected to refuse to start: its output."""
    env = {**os.environ, "TOKENWISE_DATA_DIR": str(data_dir), "TOKENWISE_PORT": str(free_port())}
    subprocess.run([*TOKENWISE, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    done = subprocess.run([*TOKENWISE, "serve"], env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    assert "cannot start" in output, output
    return " ".join(output.split())  # the console wraps long lines


@pytest.mark.parametrize(
    ("contents", "words"),
    [
        pytest.param(b"", "the key file is empty", id="empty"),
        pytest.param(None, "the key file is truncated", id="truncated"),
    ],
)
def test_an_empty_or_truncated_key_file_stops_the_start_naming_it(
    tmp_path: Path, contents: bytes | None, words: str
) -> None:
    keys = tmp_path / "keys"
    whole = generate_key_file(keys)
    broken = keys / "signing-broken.pem"
    written = whole.read_bytes()[:100] if contents is None else contents
    broken.write_bytes(written)
    whole.unlink()
    output = serve_fails(tmp_path)
    assert f"{broken}: {words}" in output, output
    assert "remove the file" in output, output
    assert broken.read_bytes() == written  # refused, not overwritten
    assert [p.name for p in keys.iterdir()] == ["signing-broken.pem"]  # nothing was generated beside it


# A child whose files cannot grow past 64 bytes: the key (about 240) is refused mid-write, as on a full
# disk. SIGXFSZ is ignored so that the write fails with EFBIG instead of killing the process.
_SMALL_FILES = """
import resource, signal, sys
from pathlib import Path
from tokenwise.security.keys import KeyConfigurationError, KeyRing
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.RLIM_INFINITY))
try:
    KeyRing.from_directory(Path(sys.argv[1]), generate=True)
except KeyConfigurationError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_failed_key_write_leaves_no_key_file_and_the_next_start_generates_one(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SMALL_FILES), str(keys)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"cannot write a development signing key into {keys}: File too large" in done.stdout, done.stdout
    assert list(keys.iterdir()) == []  # neither a partial .pem nor the temporary file
    ring = KeyRing.from_directory(keys, generate=True)  # no limit now: the next start just works
    assert [p.name for p in keys.iterdir()] == [f"signing-{ring.signing.kid}.pem"]
    assert (keys / f"signing-{ring.signing.kid}.pem").stat().st_mode & 0o777 == 0o600


def test_a_key_directory_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "keys"
    not_a_directory.write_text("not a directory")
    with pytest.raises(KeyConfigurationError, match=re.escape(f"into {not_a_directory}: File exists")):
        KeyRing.from_directory(not_a_directory, generate=True)
    assert not_a_directory.read_text() == "not a directory"
    assert [p.name for p in tmp_path.iterdir()] == ["keys"]
