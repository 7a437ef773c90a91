"""The purger's hold on its nginx: drop one copy, and the switch that lets nginx serve its copies.

**A purge deletes the copy's file.** nginx keeps each edge copy in a file named by the MD5 of its
key (the request's $uri) under ``levels=1:2`` folders (nginx.conf.template's proxy_cache_path),
and opens that file on every hit: a vanished file is a miss, which nginx refills from the API.
So the purger shares nginx's cache folder (natively the state dir; a volume in compose; an
emptyDir in the k8s pod) and needs no purge endpoint, nor Debian's cache-purge module (whose
2.3 build crashes nginx 1.22's worker on every purge here: signal 11).

**The switch is a lease of files.** nginx serves and stores edge copies only while a file named
after the current second exists: ``<switch>-<$time_iso8601>`` (one stat per request, `if (-f
...)` in nginx.conf.template). While the purger follows the event stream it keeps the files of
the next EDGE_LEASE_S seconds there, renewed at every turn of its loop; it removes them all the
moment it does not follow. So a purger that cannot follow costs the edge its copies (every read
goes to the API, which still caches in Redis), never their freshness, and one that is killed or
frozen (SIGSTOP: no code of its runs) loses the edge within EDGE_LEASE_S by itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from datetime import datetime
from pathlib import Path


class PurgeFailed(Exception):
    """A copy's file could not be deleted (its folder is not ours, the disk failed, ...)."""


def copy_file(cache_dir: Path, key: str) -> Path:
    """Where nginx keeps the copy of KEY: <md5's last char>/<the two before>/<md5>."""
    name = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
    return cache_dir / name[-1] / name[-3:-1] / name


class Edge:
    """One nginx instance's edge cache, as its purger sees it."""

    def __init__(self, cache_dir: str, following_file: str) -> None:
        self.cache_dir = Path(cache_dir)
        self.switch = Path(following_file)

    def purge(self, path: str) -> bool:
        """Drop nginx's copy of PATH: True when there was one, False when there was none."""
        try:
            copy_file(self.cache_dir, path).unlink()
        except FileNotFoundError:
            return False
        except OSError as error:
            raise PurgeFailed(f"{path}: {error!r}") from error
        return True

    def purge_all(self) -> int:
        """Drop every copy (a purger that was behind cannot know which went wrong meanwhile);
        how many. Files that are not copies (nginx's temporary ones, named <md5>.<n>) stay."""
        dropped = 0
        for folder, _, names in os.walk(self.cache_dir):
            for name in names:
                if len(name) == 32:
                    with contextlib.suppress(FileNotFoundError):
                        (Path(folder) / name).unlink()
                        dropped += 1
        return dropped

    def serve(self, on: bool, lease_s: int = 3) -> None:
        """Let nginx serve its copies for the next LEASE_S seconds (ON; called again to renew),
        or make it send every read to the API from now on."""
        now = int(time.time())
        wanted = {self.lease_file(now + ahead) for ahead in range(lease_s + 1)} if on else set()
        for path in wanted:
            if not path.exists():
                path.touch()
        for path in self.switch.parent.glob(self.switch.name + "-*"):
            if path not in wanted:
                path.unlink(missing_ok=True)

    def lease_file(self, second: int) -> Path:
        """The file that lets nginx serve copies during SECOND (named as nginx's $time_iso8601
        writes it: local time, with its offset)."""
        stamp = datetime.fromtimestamp(second).astimezone().isoformat(timespec="seconds")
        return self.switch.with_name(f"{self.switch.name}-{stamp}")

    @property
    def serving(self) -> bool:
        """Whether nginx may serve copies now (this second's lease file exists)."""
        return self.lease_file(int(time.time())).exists()
