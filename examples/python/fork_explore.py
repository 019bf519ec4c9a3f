"""Explore several directions from one prepared sandbox: set a sandbox up once, pause it
while nobody needs it, resume it where it was, then fork it so that each attempt starts
from that same state (files and memory) without seeing the others' changes.

Needs a server whose runtime can checkpoint (gVisor, the default).

Run: WARREN_API_URL=... WARREN_API_KEY=... python3 fork_explore.py
Prints "3 forks explored from one setup: attempt-0, attempt-1, attempt-2 (the parent
kept its own file)".
"""

from __future__ import annotations

from warren import Sandbox


def main() -> None:
    with Sandbox.create(timeout=300) as parent:
        # The expensive part, done once: here just a file standing for a cloned repo
        # or an installed environment.
        parent.files.write("/home/user/project/state.txt", "prepared\n")

        parent.pause()  # nothing runs and no CPU is used until it is needed again
        parent.resume()
        assert parent.files.read("/home/user/project/state.txt") == "prepared\n"

        forks = parent.fork(3, timeout=120)
        try:
            results = []
            for i, f in enumerate(forks):
                # Each fork starts from the prepared state and writes its own result.
                assert f.files.read("/home/user/project/state.txt") == "prepared\n"
                f.files.write("/home/user/project/state.txt", f"attempt-{i}\n")
                results.append(f.files.read("/home/user/project/state.txt").strip())
        finally:
            for f in forks:
                f.kill()
                f.close()
        kept = parent.files.read("/home/user/project/state.txt") == "prepared\n"
        print(f"{len(results)} forks explored from one setup: {', '.join(results)}"
              f"{' (the parent kept its own file)' if kept else ' (the parent saw a fork write!)'}")


if __name__ == "__main__":
    main()
