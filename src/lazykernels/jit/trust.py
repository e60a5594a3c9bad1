"""Who may write to the kernel cache: ownership and permission checks, content hashes.

The cache holds shared libraries that this user's processes load and run, named by a key
anyone can recompute from the generated source. So whoever can write into the cache
directory can run code in the user's processes. The rules, checked before the cache is read
or written:

- the cache directory is owned by the current (effective) user and writable by nobody
  else: no group or other write bit. Directories we create are made ``0700``; the default
  directory is tightened to ``0700`` when it is ours and looser;
- a directory that fails is refused with :class:`~lazykernels.errors.CacheError`, naming
  the folder, the problem and the fix; with ``LAZYKERNELS_CACHE_PRIVATE=1`` the cache moves
  instead into ``<folder>/user-<uid>``, a private subfolder (which must pass the same rules);
- a library is loaded only when it and its metadata are owned by the user, not writable by
  group or others, and the library's sha256 equals the one recorded in the metadata when
  it was built (the caller rebuilds it otherwise, and warns once).

Not covered: root (who can write anywhere), and a parent directory writable by others
without the sticky bit (someone could rename the cache folder away and put another one in
its place); the path is resolved once per call and each check uses ``lstat``.
"""

from __future__ import annotations

import os
import stat
from hashlib import sha256
from pathlib import Path

from ..errors import CacheError

PRIVATE_ENV = "LAZYKERNELS_CACHE_PRIVATE"
DIR_MODE = 0o700
FILE_MODE = 0o600
LIBRARY_MODE = 0o700

_UNTRUSTED_BITS = stat.S_IWGRP | stat.S_IWOTH


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _uid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else -1


def directory_problem(path: Path) -> str | None:
    """Why ``path`` cannot hold this user's kernels, or None when it can.

    Example:
        >>> import tempfile
        >>> directory_problem(Path(tempfile.mkdtemp()))
    """
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"it cannot be inspected ({exc.strerror or exc})"
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    uid = _uid()
    if uid >= 0 and info.st_uid != uid:
        return f"it is owned by {_owner_name(info.st_uid)}, not by you ({_owner_name(uid)})"
    loose = info.st_mode & _UNTRUSTED_BITS
    if loose:
        who = " and ".join(
            name for bit, name in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others")) if loose & bit
        )
        return f"it is writable by {who} (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each new one with mode 0700.

    Raises:
        OSError: a directory cannot be created.
    """
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask


def _refusal(path: Path, problem: str) -> CacheError:
    uid = _uid()
    return CacheError(
        f"refusing to use the kernel cache directory {path}: {problem}. Anyone who can write "
        "there can plant a library that lazykernels would load and run in your processes. "
        f"Fix: `chmod 700 {path}` if the folder is yours, or point LAZYKERNELS_CACHE to a "
        f"folder of your own, or set {PRIVATE_ENV}=1 to keep the cache in a private "
        f"subfolder {path / f'user-{uid}'}"
    )


def private_requested() -> bool:
    """Whether ``LAZYKERNELS_CACHE_PRIVATE`` asks for a per-user subfolder."""
    return os.environ.get(PRIVATE_ENV, "").strip() not in ("", "0")


def trusted_directory(path: Path, *, default: bool) -> Path:
    """``path`` created if needed (0700) and checked; or its private subfolder (opt-in).

    Args:
        path: the configured cache directory.
        default: whether it is the library's default location (tightened to 0700 when it
            is ours and looser, rather than refused).

    Returns:
        The directory to use: ``path``, or ``path/user-<uid>`` when ``path`` fails the rules
        and ``LAZYKERNELS_CACHE_PRIVATE`` is set.

    Raises:
        CacheError: the directory cannot be created, or fails the rules (the message says
            which, and how to fix it).
    """
    try:
        make_private_dirs(path)
    except OSError as exc:
        raise CacheError(
            f"cannot create the kernel cache directory {path}: {exc}; "
            "set LAZYKERNELS_CACHE to a writable directory"
        ) from exc
    path = path.resolve()
    problem = directory_problem(path)
    if problem is not None and default and _owned(path):
        os.chmod(path, DIR_MODE)
        problem = directory_problem(path)
    if problem is None:
        return path
    if not private_requested():
        raise _refusal(path, problem)
    private = path / f"user-{_uid()}"
    try:
        make_private_dirs(private)
    except OSError as exc:
        raise CacheError(
            f"cannot create the private kernel cache folder {private} ({PRIVATE_ENV} is set): "
            f"{exc}; point LAZYKERNELS_CACHE to a folder of your own"
        ) from exc
    problem = directory_problem(private)
    if problem is not None:
        raise CacheError(
            f"refusing to use the private kernel cache folder {private}: {problem}; someone "
            "else may have created it to plant libraries. Point LAZYKERNELS_CACHE to a folder "
            "of your own"
        )
    return private


def _owned(path: Path) -> bool:
    try:
        return os.lstat(path).st_uid == _uid()
    except OSError:
        return False


def file_problem(path: Path) -> str | None:
    """Why the cache file ``path`` must not be trusted (owner, mode, type), or None.

    Example:
        >>> file_problem(Path("/no/such/file"))
        'it is missing'
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "it is missing"
    except OSError as exc:
        return f"it cannot be inspected ({exc.strerror or exc})"
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    uid = _uid()
    if uid >= 0 and info.st_uid != uid:
        return f"it is owned by {_owner_name(info.st_uid)}, not by you"
    if info.st_mode & _UNTRUSTED_BITS:
        return f"it is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, in hexadecimal.

    Raises:
        OSError: the file cannot be read.
    """
    digest = sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
