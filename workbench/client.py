"""`TrainerClient`: the GUI's side of the trainer process (spawn, commands, draining, shutdown). Qt-free."""
from __future__ import annotations

import atexit
import multiprocessing as mp
import queue
import typing

from .protocol import Command, Stop

COMMANDS = typing.get_args(Command)


class TrainerClient:
    def __init__(self):
        self.ctx = mp.get_context("spawn")
        atexit.register(self.stop, 5.0)
        self.proc = None
        self.cmd_q = self.msg_q = self.snap_q = None
        self.exit_reported = False
        self.killed = False  # we had to terminate or kill it: its queues may end in half a message

    def start(self, mode: str, payload: dict, snapshot_hz: float = 30.0) -> None:
        if self.alive():
            raise RuntimeError("a trainer is already running; stop it first")
        from .trainer_process import trainer_main

        self.cmd_q = self.ctx.Queue()
        self.msg_q = self.ctx.Queue()
        self.snap_q = self.ctx.Queue(maxsize=2)
        # not daemonic: the trainer starts its own learner process, which a daemonic one may not; it stops
        # itself when this process goes (`ProcessCallbacks` watches its parent) and `stop()` runs at exit
        self.proc = self.ctx.Process(target=trainer_main, args=(mode, payload, self.cmd_q, self.msg_q, self.snap_q,
                                                                  snapshot_hz), name=f"qmix-{mode}")
        self.proc.start()
        self.exit_reported = False
        self.killed = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    @property
    def pid(self):
        return None if self.proc is None else self.proc.pid

    def send(self, cmd: Command) -> None:
        """A `workbench.protocol` command to the trainer (dropped when none is running)."""
        if not isinstance(cmd, COMMANDS):
            raise TypeError(f"not a command of workbench.protocol: {cmd!r}")
        if self.alive():
            self.cmd_q.put(cmd)

    def poll(self, max_messages: int = 10_000):
        """(messages, latest snapshot or None, exit code if the process has ended unreported)."""
        msgs = []
        if self._msg_q_readable():
            for _ in range(max_messages):
                try:
                    msgs.append(self.msg_q.get_nowait())
                except (queue.Empty, OSError, ValueError):
                    break
        snap = None
        # A queue read blocks for the rest of a message once it has begun; a process that is gone may have left
        # half a message (a snapshot cut off at exit, anything cut off by a kill), so such a queue is never read:
        # snapshots only while the process lives, messages after its end only when it exited by itself.
        if self.snap_q is not None and self.proc is not None and self.proc.is_alive():
            while True:
                try:
                    snap = self.snap_q.get_nowait()
                except (queue.Empty, OSError, ValueError):
                    break
        code = None
        if self.proc is not None and not self.proc.is_alive() and not self.exit_reported:
            self.proc.join(0.1)
            # drain what the process flushed before exiting (it joins its message queue's feeder first)
            if self._msg_q_readable():
                while True:
                    try:
                        msgs.append(self.msg_q.get(timeout=0.05))
                    except (queue.Empty, OSError, ValueError):
                        break
            code = self.proc.exitcode
            self.exit_reported = True
        return msgs, snap, code

    def _msg_q_readable(self) -> bool:
        """Messages are complete while the process lives, and after it exited by itself (it flushes its queue
        first); not after a kill, ours or a signal's."""
        if self.msg_q is None or self.proc is None:
            return False
        if self.proc.is_alive():
            return True
        return not self.killed and (self.proc.exitcode or 0) >= 0

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the trainer to stop (it saves a checkpoint), then make sure the process is gone."""
        if self.proc is None:
            return
        if self.proc.is_alive():
            self.cmd_q.put(Stop())
            self.proc.join(timeout)
        if self.proc.is_alive():
            self.killed = True
            self.proc.terminate()
            self.proc.join(2.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2.0)

    def kill(self) -> None:
        if self.alive():
            self.killed = True
            self.proc.kill()
            self.proc.join(2.0)
