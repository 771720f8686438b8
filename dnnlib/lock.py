"""An exclusive lock on a folder: one process at a time, released when that process ends, even by kill -9."""
import contextlib
import fcntl
import json
import os
import socket
import time

LOCK_NAME = 'run.lock'


class FolderLocked(Exception):
    """Another live process holds the folder's lock (the message names it)."""


def _holder(fd):
    """'process PID on HOST since TIME' from a lock file's record, or 'another process' when it has none yet."""
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode() or 'null')
        return f'process {record["pid"]} on {record["host"]} since {record["since"]}'
    except (OSError, ValueError, TypeError, KeyError):
        return 'another process'


def _open_locked(path, folder):
    """A descriptor of `path` that holds its flock; FolderLocked when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise FolderLocked(f'{folder} is in use by {holder}; wait until it ends or stop it') from None
        try:  # the holder before us may have removed the file between our open and our flock
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder, name=LOCK_NAME):
    """Hold an exclusive lock on `folder` for the block; raise FolderLocked when another process holds it.

    The lock is an flock on folder/name, which the kernel drops when the holding process ends however it
    ends, so a lock left by a killed process never blocks a later one. The file records the holder's pid,
    host and start time for the message a second process gets, and is removed when the block ends.
    """
    path = os.path.join(folder, name)
    fd = _open_locked(path, folder)
    try:
        record = dict(pid=os.getpid(), host=socket.gethostname(), since=time.strftime('%Y-%m-%d %H:%M:%S'))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # while still holding the lock; a waiting opener notices the removal (_open_locked)
        os.close(fd)


@contextlib.contextmanager
def creating_folder_lock(folder, name=LOCK_NAME):
    """folder_lock on `folder`, made first when missing. A folder made here and left empty at the end (a command
    refused after taking the lock) is removed again, so the refusal leaves nothing behind."""
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    try:
        with folder_lock(folder, name) as path:
            yield path
    finally:
        if created:
            with contextlib.suppress(OSError):  # not empty: it holds work, which stays
                os.rmdir(folder)
