"""A video's workspace stays under the workspaces root, whatever a page id or a manifest says."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidgen.files import private_mode
from vidgen.workspace import UnsafePath, Workspace


@pytest.mark.parametrize("page_id", ["..", "../other", "a/b", "/etc", "", ".", "x\x00y"])
def test_a_workspace_folder_name_cannot_lead_outside_the_root(tmp_path: Path, page_id: str) -> None:
    with pytest.raises(UnsafePath):
        Workspace.for_entry(tmp_path / "workspaces", "wild_frontiers", page_id)


def test_a_manifest_pointing_outside_its_workspace_is_not_trusted(tmp_path: Path) -> None:
    ws = Workspace.for_entry(tmp_path / "workspaces", "wild_frontiers", "1f2e3d4c-0000-4000-8000-0000000000a1").ensure()
    made = ws.dir("assets") / "a.png"
    made.write_bytes(b"png")
    entry = ws.record("images/0", made, "fp")
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"png")
    forged = entry.model_copy(update={"path": "../../../secret.txt"})
    (ws.root / "manifest" / "images__0.json").write_text(forged.model_dump_json())
    assert ws.lookup("images/0", "fp") is None
    with pytest.raises(UnsafePath):
        ws.abspath(forged)


def test_workspace_folders_and_the_home_are_owner_only(tmp_path: Path) -> None:
    import os
    import stat

    from vidgen.config import write_env_file
    from vidgen.providers.base import KeptTask

    ws = Workspace.for_entry(tmp_path / "workspaces", "wild_frontiers", "1f2e3d4c-0000-4000-8000-0000000000a1").ensure()
    for folder in (tmp_path / "workspaces", tmp_path / "workspaces" / "wild_frontiers", ws.root, ws.dir("final")):
        assert stat.S_IMODE(os.stat(folder).st_mode) == private_mode(), folder  # 0700 (0711 as root)
    note = ws.dir("assets") / ".kie-task.json"
    KeptTask(task_id="t-1", fingerprint="f").save(note)
    assert stat.S_IMODE(os.stat(note).st_mode) == 0o600

    home = tmp_path / "home"
    home.mkdir(mode=0o755)  # made by an earlier version
    write_env_file(home / "notion.env", {"NOTION_TOKEN": "secret_x"})
    assert stat.S_IMODE(os.stat(home).st_mode) == private_mode()
    assert stat.S_IMODE(os.stat(home / "notion.env").st_mode) == 0o600


def test_as_root_the_home_stays_passable_for_the_embedded_postgres_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import stat

    from vidgen.files import private_dir

    monkeypatch.setattr(os, "geteuid", lambda: 0)  # what `vidgen demo` run as root sees
    home = private_dir(tmp_path / "home")
    mode = stat.S_IMODE(os.stat(home).st_mode)
    assert mode & 0o001 and not mode & 0o066  # others pass through to .vidgen/postgres, never list or read
