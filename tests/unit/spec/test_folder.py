"""A spec's siblings: who claims a dag_id, read cheaply, with and without the folder index."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import mlbatch.spec.folder as folder_module
from mlbatch.spec import folder_index
from mlbatch.spec.folder import SpecFolder
from mlbatch.spec.lint import lint_paths
from mlbatch.spec.loader import SpecError, check_spec, load_spec

SPEC = """{dag_id}schedule: null
steps:
  {step}:
    run: check.noop
"""
HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def write(folder: Path, name: str, dag_id: str | None = None, step: str = "only", settled: bool = True,
          minutes_later: int = 0) -> Path:
    path = folder / name
    path.write_text(SPEC.format(dag_id=f"dag_id: {dag_id}\n" if dag_id else "", step=step))
    if settled:  # as a spec written a while ago: old enough for the index to keep it
        mtime = HOUR_AGO_NS + minutes_later * 60 * 10**9
        os.utime(path, ns=(mtime, mtime))
    return path


@pytest.fixture
def parses(monkeypatch):
    """Every sibling file SpecFolder parses as YAML, by name."""
    seen: list[str] = []
    real_read = SpecFolder._read

    def read(self, name):
        if name not in self._raw:  # a read of the file, not of the memo
            seen.append(name)
        return real_read(self, name)

    monkeypatch.setattr(SpecFolder, "_read", read)
    real_parse = folder_module._parse
    parsed: list[bytes | None] = []
    monkeypatch.setattr(folder_module, "_parse", lambda raw: parsed.append(raw) or real_parse(raw))
    return {"read": seen, "parsed": parsed}


def folders(directory: Path) -> list[SpecFolder]:
    return [SpecFolder(directory), SpecFolder.indexed(directory)]


@pytest.mark.parametrize("spelling", ['dag_id: churn', 'dag_id: "churn"', "dag_id: 'churn'", 'dag_id: "ch\\x75rn"',
                                      'dag_id: !!str churn', '"dag\\x5fid": churn', '"dag_id": &name churn'])
def test_a_dag_id_claims_in_every_yaml_spelling(tmp_path, spelling):
    own = write(tmp_path, "churn.yaml")
    other = tmp_path / "zeta.yaml"
    other.write_text(spelling + "\n" + SPEC.format(dag_id="", step="only"))
    write(tmp_path, "churn_v2.yaml")  # its file name holds the id, but it claims churn_v2
    write(tmp_path, "beta.yaml", dag_id="churn_scoring")
    for folder in folders(tmp_path):
        assert folder.claimants(own, "churn") == [own, other]
    with pytest.raises(SpecError, match="dag_id 'churn' is also declared by churn.yaml"):
        load_spec(other)


def test_files_that_are_not_specs_claim_nothing(tmp_path):
    own = write(tmp_path, "churn.yaml", dag_id="churn")
    (tmp_path / "broken.yaml").write_text("dag_id: churn\nsteps: [unclosed\n")
    (tmp_path / "latin1.yaml").write_bytes("dag_id: churn  # caf\xe9\n".encode("latin-1"))
    (tmp_path / "listing.yaml").write_text("- dag_id: churn\n")
    for folder in folders(tmp_path):
        assert folder.claimants(own, "churn") == [own]
    assert load_spec(own).dag_id == "churn"


def test_without_an_index_only_the_files_that_can_claim_the_id_are_parsed(tmp_path, parses):
    own = write(tmp_path, "churn.yaml")
    for index in range(40):
        write(tmp_path, f"batch_{index:02d}.yaml", dag_id=f"team_{index:02d}" if index % 2 else None)
    claimant = write(tmp_path, "zz.yaml", dag_id="churn")
    assert SpecFolder(tmp_path).claimants(own, "churn") == [own, claimant]
    assert parses["parsed"] == [claimant.read_bytes()]


def test_the_index_spares_the_next_parse_every_read_and_sees_each_change(tmp_path, parses):
    own = write(tmp_path, "churn.yaml")
    scoring = tmp_path / "scoring.yaml"
    scoring.write_text("schedule: {after: [churn.train]}\nsteps:\n  score:\n    run: check.noop\n")
    os.utime(scoring, ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    for index in range(20):
        write(tmp_path, f"batch_{index:02d}.yaml", dag_id=f"team_{index:02d}", step="train")
    with pytest.raises(SpecError, match="batch 'churn' has no step 'train'"):
        load_spec(scoring)
    assert len(parses["read"]) == 21  # the first parse reads every sibling once

    parses["read"].clear()
    assert load_spec(own).dag_id == "churn"
    assert parses["read"] == ["scoring.yaml"]  # a check never reads its own file through the folder
    parses["read"].clear()
    assert load_spec(tmp_path / "batch_00.yaml").dag_id == "team_00"
    assert parses["read"] == []  # nothing changed since: nothing read

    write(tmp_path, "batch_07.yaml", dag_id="team_08", step="train", minutes_later=1)  # same size, later
    with pytest.raises(SpecError, match="dag_id 'team_08' is also declared by batch_07.yaml"):
        load_spec(tmp_path / "batch_08.yaml")
    parses["read"].clear()
    write(tmp_path, "churn.yaml", step="train", minutes_later=2)
    assert load_spec(scoring).dag_id == "scoring"  # churn now has step train: the after check passes
    assert parses["read"] == ["churn.yaml"]  # only the changed file was read again


def test_a_file_changed_within_one_timestamp_tick_is_never_taken_from_the_index(tmp_path):
    own = write(tmp_path, "zz.yaml", dag_id="churn")
    fresh = write(tmp_path, "aa.yaml", dag_id="aaaaa", settled=False)  # written just now
    stamp = fresh.stat()
    assert load_spec(own).dag_id == "churn"
    # Same size, same mtime, same inode: only reading it again shows that it now claims churn.
    with open(fresh, "r+") as file:
        file.write(fresh.read_text().replace("aaaaa", "churn"))
    os.utime(fresh, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert (fresh.stat().st_size, fresh.stat().st_ino) == (stamp.st_size, stamp.st_ino)
    with pytest.raises(SpecError, match="dag_id 'churn' is also declared by aa.yaml"):
        load_spec(own)


def test_a_corrupt_index_is_ignored_and_written_anew(tmp_path):
    own = write(tmp_path, "churn.yaml")
    other = write(tmp_path, "zeta.yaml", dag_id="churn")
    index = folder_index.index_file(tmp_path)
    index.write_text('{"version": 1, "entries": {"zeta.yaml": [[1, 2], "x", "not a list"]')
    with pytest.raises(SpecError, match="also declared by churn.yaml"):
        load_spec(other)
    assert load_spec(own).dag_id == "churn"
    assert '"zeta.yaml":[[' in index.read_text()


def test_the_index_lives_only_in_a_folder_of_this_user_alone(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv(folder_index.DIRECTORY_ENV, str(shared))
    assert folder_index.index_file(tmp_path) is None
    monkeypatch.setenv(folder_index.DIRECTORY_ENV, "off")
    assert folder_index.index_file(tmp_path) is None
    assert SpecFolder.indexed(tmp_path)._index is None
    monkeypatch.setenv(folder_index.DIRECTORY_ENV, str(tmp_path / "mine"))
    assert folder_index.index_file(tmp_path).parent == tmp_path / "mine"
    assert oct((tmp_path / "mine").stat().st_mode & 0o777) == oct(0o700)


def test_lint_parses_each_sibling_once_for_the_whole_folder(tmp_path, parses):
    for index in range(12):
        write(tmp_path, f"batch_{index:02d}.yaml", dag_id=f"team_{index:02d}")
    assert [p for p in lint_paths([tmp_path], cpu_count=2) if p.severity == "error"] == []
    assert len(parses["parsed"]) <= 12
    assert sorted(parses["read"]) == sorted(set(parses["read"]))


def test_a_check_with_the_index_and_one_without_agree(tmp_path, monkeypatch):
    for index in range(6):
        write(tmp_path, f"batch_{index}.yaml", dag_id="shared" if index in (2, 4) else None)
    with_index = [check_spec(p).problems for p in sorted(tmp_path.glob("*.yaml"))]
    monkeypatch.setenv(folder_index.DIRECTORY_ENV, "off")
    without = [check_spec(p).problems for p in sorted(tmp_path.glob("*.yaml"))]
    assert with_index == without
    assert [len(problems) for problems in without] == [0, 0, 0, 0, 1, 0]
