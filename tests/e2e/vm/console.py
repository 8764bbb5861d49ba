#!/usr/bin/env python3
"""The admin at the VM's console: runs one command in the root shell on the VM's second serial
port (qemu `-serial` on a unix socket) and prints what it printed; exits with its status.

    console.py SOCKET [--timeout S] COMMAND    run COMMAND (bash) in the VM, output to stdout
    console.py SOCKET --monitor COMMAND        one qemu monitor command (SOCKET: the monitor's)

The shell is the one agetty logs root into at each boot. Each call first waits until that shell
answers (it may still be booting), turns the terminal's echo off, then sends the command as a
script in base64 lines (a terminal line holds at most 4095 characters) and reads up to a marker
line carrying the exit status. The markers are printed with printf from pieces, so the shell's
echo of the input (before `stty -echo` takes) never looks like one. Exit status 124: timed out.
"""
import base64
import os
import re
import socket
import sys
import time


def connect(path, deadline):
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Console:
    def __init__(self, path, deadline):
        self.sock = connect(path, deadline)
        self.buf = b""
        self.deadline = deadline

    def send(self, text):
        # qemu stops reading the socket while the guest reads nothing from the port (still
        # booting): a send may block until then, never past the deadline
        self.sock.settimeout(max(0.1, self.deadline - time.monotonic()))
        self.sock.sendall(text.encode())

    def read_until(self, pattern, until):
        """Reads until the bytes regex matches a whole line; returns (match, text before it)."""
        rx = re.compile(pattern)
        while True:
            for m in rx.finditer(self.buf):
                before = self.buf[: m.start()]
                self.buf = self.buf[m.end():]
                return m, before
            left = min(until, self.deadline) - time.monotonic()
            if left <= 0:
                return None, b""
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise EOFError("the console closed")
            self.buf += chunk


def run(path, command, timeout):
    deadline = time.monotonic() + timeout
    con = Console(path, deadline)
    tag = "%d%d" % (os.getpid(), int(time.time() * 1000) % 100000)
    # until the shell answers: a login prompt still coming, a boot not yet there
    while True:
        try:
            con.send("\nstty -echo; printf '%%s%%s\\n' '@@RE' 'ADY%s'\n" % tag)
            m, _ = con.read_until(rb"@@READY" + tag.encode() + rb"\r?\n", time.monotonic() + 2)
        except socket.timeout:
            m = None
        if m:
            break
        if time.monotonic() > deadline:
            sys.stderr.write("console.py: no shell on %s within %ds\n" % (path, timeout))
            return 124
    script = base64.b64encode(command.encode()).decode()
    f = "/run/console-%s" % tag
    con.send(": >%s.b64\n" % f)
    for i in range(0, len(script), 1000):
        con.send("printf '%%s' '%s' >>%s.b64\n" % (script[i:i + 1000], f))
    con.send("base64 -d %s.b64 >%s; rm -f %s.b64; printf '%%s%%s\\n' '@@BE' 'GIN%s'; "
             "bash %s </dev/null 2>&1; printf '%%s%%s:%%s\\n' '@@EN' 'D%s' $?; rm -f %s\n"
             % (f, f, f, tag, f, tag, f))
    m, _ = con.read_until(rb"@@BEGIN" + tag.encode() + rb"\r?\n", deadline)
    if not m:
        sys.stderr.write("console.py: the command did not start within %ds\n" % timeout)
        return 124
    m, out = con.read_until(rb"@@END" + tag.encode() + rb":(\d+)\r?\n", deadline)
    sys.stdout.write(out.replace(b"\r\n", b"\n").decode(errors="replace"))
    if not m:
        sys.stdout.write(con.buf.replace(b"\r\n", b"\n").decode(errors="replace"))
        sys.stderr.write("console.py: timed out after %ds\n" % timeout)
        return 124
    return int(m.group(1))


def monitor(path, command):
    s = connect(path, time.monotonic() + 10)
    s.settimeout(5)
    time.sleep(0.2)
    s.sendall(command.encode() + b"\n")
    time.sleep(0.5)
    s.close()
    return 0


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        return 2
    path, args = argv[1], argv[2:]
    if args[0] == "--monitor":
        return monitor(path, " ".join(args[1:]))
    timeout = 300
    if args[0] == "--timeout":
        timeout, args = int(args[1]), args[2:]
    try:
        return run(path, " ".join(args), timeout)
    except (socket.timeout, OSError, EOFError) as e:
        sys.stderr.write("console.py: %s: %s\n" % (path, e))
        return 124


if __name__ == "__main__":
    sys.exit(main(sys.argv))
