"""Template builds against a real server (see conftest.py for the environment it
needs): a Dockerfile and a context directory (less its .dockerignore), the log
followed as it comes, a sandbox of the result, a rebuild whose last step changed
(the others from the cache), a failing build (BuildError with the step, its exit code
and last lines; the previous build stays what sandboxes start from), the template's
builds, delete; and a build from steps with the asyncio client."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Iterator, List

import pytest

from conftest import Live
from warren import (AsyncTemplates, BuildError, BuildLogLine, BuildStep, InvalidArgumentError, NotFoundError, Sandbox,
                    Templates)

pytestmark = pytest.mark.integration

NAME = f"py-tpl-{secrets.token_hex(4)}"


def dockerfile(marker: str, tail: str = "") -> str:
    """The build; marker is written by the last step. (The run's name goes into the
    marker: layers are cached by content, so a server that ran this suite before would
    otherwise have the last step cached too.)"""
    marker = f"{marker}-{NAME}"
    return ("FROM base\n"
            "RUN mkdir -p /srv && echo built > /srv/first\n"
            "WORKDIR /srv\n"
            "COPY . /srv/\n"
            "ENV GREETING=hi\n"
            f"RUN echo {marker} > /srv/marker\n" + tail)


@pytest.fixture(scope="module")
def tpl(live: Live) -> Iterator[Templates]:
    t = Templates()
    try:
        yield t
    finally:
        for name in (NAME, NAME + "-async"):
            t.delete(name)
        t.close()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("context")
    (d / "app.py").write_text("print('hello from the template')\n")
    (d / "notes.tmp").write_text("left out by .dockerignore\n")
    (d / "cache").mkdir()
    (d / "cache" / "big.bin").write_bytes(b"\0" * 4096)
    (d / ".dockerignore").write_text("*.tmp\ncache\nDockerfile\n")
    return d


def test_build_from_a_dockerfile_and_context(tpl: Templates, ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(dockerfile("v1"))
    lines: List[BuildLogLine] = []
    b = tpl.build(NAME, context=ctx, on_log=lines.append)
    assert b.state == "ready" and b.template_id == NAME and b.finished_at is not None
    assert len(b.steps) == 5, b.steps
    assert [ln.offset for ln in lines] == list(range(len(lines))), "every line once, in order"
    assert any("step 5/5" in ln.message for ln in lines), [ln.message for ln in lines]
    assert b.steps == tpl.get_build(NAME, b.build_id).steps
    with Sandbox.create(template=NAME, timeout=120) as sbx:
        r = sbx.commands.run("python3 app.py; cat first marker; echo $GREETING; pwd; ls -A /srv")
    out = r.stdout.splitlines()
    assert out[:5] == ["hello from the template", "built", f"v1-{NAME}", "hi", "/srv"], r.stdout
    assert "notes.tmp" not in out and "cache" not in out and "Dockerfile" not in out, r.stdout


def test_rebuild_takes_unchanged_steps_from_the_cache(tpl: Templates, ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(dockerfile("v2"))
    b = tpl.build(NAME, context=ctx)
    assert b.state == "ready"
    assert b.cached_steps == [0, 1, 2, 3], f"only the changed last step runs again: {b.steps}"
    assert not b.steps[4].cached and b.steps[4].exit_code == 0


def test_failed_build_says_the_step_exit_code_and_last_lines(tpl: Templates, ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(dockerfile("v3", "RUN echo the step fails; exit 3\n"))
    with pytest.raises(BuildError) as ei:
        tpl.build(NAME, context=ctx)
    e = ei.value
    assert (e.step, e.exit_code, e.template_id) == (6, 3, NAME), e
    assert "the step fails" in e.last_lines, e.last_lines
    assert "exit code 3" in str(e) and e.build.state == "error"
    # Nothing half-built: sandboxes still start from the last ready build (v2).
    with Sandbox.create(template=NAME, timeout=60) as sbx:
        assert sbx.commands.run("cat /srv/marker").stdout == f"v2-{NAME}\n"
    builds = tpl.list_builds(NAME)
    assert [x.state for x in builds] == ["error", "ready", "ready"], builds
    assert builds[0].build_id == e.build_id and "exit code 3" in (builds[0].reason or "")
    page = tpl.logs(NAME, e.build_id)
    assert page.state == "error" and any(ln.message == "the step fails" for ln in page.lines)


def test_bad_dockerfile_names_the_line(tpl: Templates) -> None:
    with pytest.raises(InvalidArgumentError, match="line 2"):
        tpl.build(NAME, dockerfile_text="FROM base\nHEALTHCHECK NONE\n")


def test_list_and_delete(tpl: Templates) -> None:
    by_id = {t.template_id: t for t in tpl.list()}
    assert by_id["base"].builtin and not by_id[NAME].builtin and by_id[NAME].ready
    assert tpl.list_builds("base") == []
    with pytest.raises(InvalidArgumentError, match="built-in"):
        tpl.delete("base")
    assert tpl.delete(NAME) is True
    with pytest.raises(NotFoundError):
        tpl.get(NAME)
    assert tpl.delete(NAME) is False
    assert NAME not in {t.template_id for t in tpl.list()}


async def test_async_build_from_steps(live: Live) -> None:
    name = NAME + "-async"
    seen: List[str] = []

    async def on_log(line: BuildLogLine) -> None:
        seen.append(line.message)

    async with AsyncTemplates() as t:
        b = await t.build(name, from_template="base", steps=[BuildStep.env({"X": "1"}), BuildStep.run("echo $X > /x")],
                          on_log=on_log)
        assert b.state == "ready" and len(b.steps) == 2 and seen
        again = await t.build(name, from_template="base", steps=[BuildStep.env({"X": "1"}), BuildStep.run("echo $X > /x")])
        assert again.cached_steps == [0, 1], again.steps
        assert [x.build_id for x in await t.list_builds(name)] == [again.build_id, b.build_id]
        assert await t.delete(name) is True
