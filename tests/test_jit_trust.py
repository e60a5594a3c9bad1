"""Tests of the kernel cache's trust rules (jit/trust.py): who owns the directory and the
libraries, their modes, and the sha256 recorded at build time.

"Another owner" is made with ``os.chown`` to an unused uid, which needs root; those tests are
skipped for other users (the mode and hash tests are not).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import warnings

import numpy as np
import pytest

from lazykernels import jit
from lazykernels.errors import CacheError, CacheWarning
from lazykernels.jit import cache as jit_cache
from lazykernels.jit import load as jit_load
from lazykernels.jit import trust

from .test_jit import ANSWER_SOURCE, SUM_SOURCE, _call_sum, _unique, needs_compiler

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX owners and modes")

OTHER_UID = 54321  # no such user here: "someone else"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture
def cache(empty_cache):
    return empty_cache


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------- the directory


def test_created_directories_are_private(cache, monkeypatch):
    target = cache / "a" / "b"
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(target))
    old = os.umask(0o002)  # a permissive umask (user private groups) must not leak through
    try:
        assert jit.cache_dir() == target.resolve()
    finally:
        os.umask(old)
    for directory in (cache, cache / "a", target):
        assert _mode(directory) == 0o700


@pytest.mark.parametrize(
    ("mode", "who"), [(0o770, "group"), (0o707, "others"), (0o777, "group and others")]
)
def test_group_or_world_writable_cache_directory_is_refused(cache, mode, who):
    cache.mkdir()
    cache.chmod(mode)
    with pytest.raises(CacheError) as error:
        jit.cache_dir()
    message = str(error.value)
    assert f"refusing to use the kernel cache directory {cache.resolve()}" in message
    assert f"writable by {who} (mode {mode:04o})" in message
    assert f"chmod 700 {cache.resolve()}" in message  # the fix
    assert "LAZYKERNELS_CACHE_PRIVATE=1" in message
    with pytest.raises(CacheError):  # nor is anything built there
        jit.build(_unique(ANSWER_SOURCE))
    with pytest.raises(CacheError):
        jit.cache_info()
    assert list(cache.iterdir()) == []
    assert _mode(cache) == mode  # a folder the user named is never changed behind their back


@as_root
def test_cache_directory_of_another_owner_is_refused(cache):
    cache.mkdir(mode=0o700)
    os.chown(cache, OTHER_UID, -1)
    with pytest.raises(CacheError, match=f"owned by uid {OTHER_UID}, not by you"):
        jit.cache_dir()


def test_a_symlinked_cache_is_checked_where_it_points(cache, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    link = tmp_path / "link"
    link.symlink_to(shared)
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(link))
    with pytest.raises(CacheError, match=f"directory {shared.resolve()}: it is writable"):
        jit.cache_dir()


def test_default_directory_is_tightened(monkeypatch, tmp_path):
    if sys.platform != "linux":
        pytest.skip("XDG layout")
    monkeypatch.delenv("LAZYKERNELS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    default = tmp_path / "xdg" / "lazykernels"
    default.mkdir(parents=True)
    default.chmod(0o775)  # made by an older version under a permissive umask
    assert jit.cache_dir() == default.resolve()
    assert _mode(default) == 0o700


def test_private_subfolder_on_request(cache, monkeypatch):
    cache.mkdir()
    cache.chmod(0o1777)  # a shared, sticky folder such as /tmp
    monkeypatch.setenv("LAZYKERNELS_CACHE_PRIVATE", "1")
    private = jit.cache_dir()
    assert private == cache.resolve() / f"user-{os.geteuid()}"
    assert _mode(private) == 0o700
    assert jit.cache_info()["path"] == str(private)
    monkeypatch.setenv("LAZYKERNELS_CACHE_PRIVATE", "0")
    with pytest.raises(CacheError):
        jit.cache_dir()


def test_private_subfolder_must_be_private_too(cache, monkeypatch):
    cache.mkdir()
    cache.chmod(0o777)
    squatted = cache / f"user-{os.geteuid()}"
    squatted.mkdir()
    squatted.chmod(0o777)  # prepared by someone else for us
    monkeypatch.setenv("LAZYKERNELS_CACHE_PRIVATE", "1")
    with pytest.raises(CacheError, match="private kernel cache folder .* writable"):
        jit.cache_dir()


@as_root
def test_private_subfolder_of_another_owner_is_refused(cache, monkeypatch):
    cache.mkdir()
    cache.chmod(0o1777)
    squatted = cache / f"user-{os.geteuid()}"
    squatted.mkdir(mode=0o700)
    os.chown(squatted, OTHER_UID, -1)
    monkeypatch.setenv("LAZYKERNELS_CACHE_PRIVATE", "1")
    with pytest.raises(CacheError, match=f"owned by uid {OTHER_UID}"):
        jit.cache_dir()


# ---------------------------------------------------------------- the libraries


def _built(source: str):
    """Build ``source`` into the cache without loading it in this process: (key, .so path)."""
    info = jit.compiler_info()
    key = jit_cache.kernel_key(source, info)
    path, built = jit_cache.build_artifact(source, "genuine", info, key=key)
    assert built
    return key, path


def _rebuilt_with_one_warning(source: str, answer) -> None:
    """``jit.build`` refuses the planted library, rebuilds, warns once (then never again)."""
    with pytest.warns(CacheWarning, match="not loading the cached kernel") as record:
        assert answer(jit.build(source, "victim"))
    assert len(record) == 1


@pytest.mark.cpu
@needs_compiler
def test_files_are_written_private_and_hash_recorded(cache):
    source = _unique(ANSWER_SOURCE)
    key, library = _built(source)
    assert _mode(library) == 0o700
    for suffix in ("json", "cpp"):
        assert _mode(cache / f"{key}.{suffix}") == 0o600
    metadata = json.loads((cache / f"{key}.json").read_text())
    assert metadata["sha256"] == trust.file_sha256(library)
    assert jit_cache.library_problem(cache.resolve(), key) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a trusted library loads without a warning
        assert jit.build(source).lk_answer() == 42


@pytest.mark.cpu
@needs_compiler
def test_library_planted_with_another_hash_is_not_loaded(cache):
    source = _unique(ANSWER_SOURCE)
    key, library = _built(source)
    _, evil = _built(_unique('extern "C" int lk_answer(void) { return 666; }\n'))
    library.write_bytes(evil.read_bytes())  # the right name, someone else's code
    library.chmod(0o700)
    problem = jit_cache.library_problem(cache.resolve(), key)
    assert problem is not None and "sha256" in problem and "differs" in problem
    _rebuilt_with_one_warning(source, lambda lib: lib.lk_answer() == 42)
    assert jit_cache.library_problem(cache.resolve(), key) is None


@pytest.mark.cpu
@needs_compiler
def test_library_planted_without_metadata_is_not_loaded(cache):
    source = _unique(ANSWER_SOURCE)
    key, library = _built(source)
    _, evil = _built(_unique('extern "C" int lk_answer(void) { return 666; }\n'))
    library.write_bytes(evil.read_bytes())
    (cache / f"{key}.json").unlink()
    assert "json: it is missing" in jit_cache.library_problem(cache.resolve(), key)
    _rebuilt_with_one_warning(source, lambda lib: lib.lk_answer() == 42)


@as_root
@pytest.mark.cpu
@needs_compiler
def test_library_of_another_owner_is_not_loaded(cache):
    source = _unique(SUM_SOURCE)
    key, library = _built(source)
    os.chown(library, OTHER_UID, -1)  # same bytes, same hash: the owner alone disqualifies
    assert f"owned by uid {OTHER_UID}" in jit_cache.library_problem(cache.resolve(), key)
    _rebuilt_with_one_warning(source, lambda lib: _call_sum(lib, np.arange(3.0)) == 5.0)
    assert os.stat(library).st_uid == os.geteuid()

    # metadata of another owner: the recorded hash is not ours to believe
    source = _unique(SUM_SOURCE)
    key, library = _built(source)
    os.chown(cache / f"{key}.json", OTHER_UID, -1)
    assert "metadata" in jit_cache.library_problem(cache.resolve(), key)
    _rebuilt_with_one_warning(source, lambda lib: _call_sum(lib, np.arange(2.0)) == 1.0)


@pytest.mark.cpu
@needs_compiler
def test_writable_library_is_not_loaded_and_warning_is_given_once(cache):
    source = _unique(ANSWER_SOURCE)
    key, library = _built(source)
    library.chmod(0o777)
    assert "writable by group or others" in jit_cache.library_problem(cache.resolve(), key)
    _rebuilt_with_one_warning(source, lambda lib: lib.lk_answer() == 42)
    assert _mode(library) == 0o700
    # the same kernel failing again in this process is rebuilt again, without a new warning
    library.chmod(0o777)
    jit_load.forget_loaded()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert jit.build(source).lk_answer() == 42
    assert _mode(library) == 0o700


@pytest.mark.cpu
@needs_compiler
def test_cache_info_lists_untrusted_kernels(cache, capsys):
    from lazykernels.cli import main

    key, library = _built(_unique(ANSWER_SOURCE))
    assert main(["cache", "info", "--list"]) == 0
    assert "NOT TRUSTED" not in capsys.readouterr().out
    library.chmod(0o777)
    assert main(["cache", "info", "--list"]) == 0
    out = capsys.readouterr().out
    assert (
        key[:16] in out and "NOT TRUSTED, rebuilt on next use: the library: it is writable" in out
    )
