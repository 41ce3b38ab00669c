#!/usr/bin/env python3
# Runs a command on a fresh pseudo-terminal of a given size, copies everything it prints
# to stdout, and part-way through resizes the terminal (which makes the kernel send
# SIGWINCH to its foreground process group; we send one more to be sure).
#
#   pty-run.py ROWS COLS RESIZE_AFTER_S ROWS2 COLS2 -- ARGV...
#
# Exits with the command's exit code.
import fcntl, os, select, signal, struct, sys, termios, time

rows, cols, after, rows2, cols2 = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
argv = sys.argv[sys.argv.index("--") + 1:]

def set_size(fd, r, c):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))

master, slave = os.openpty()
set_size(slave, rows, cols)
pid = os.fork()
if pid == 0:
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    os.execvp(argv[0], argv)
os.close(slave)
start = time.time()
resized = after < 0
out = sys.stdout.buffer
while True:
    if not resized and time.time() - start >= after:
        set_size(master, rows2, cols2)
        os.kill(pid, signal.SIGWINCH)
        resized = True
    r, _, _ = select.select([master], [], [], 0.05)
    if r:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        out.write(data)
        out.flush()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else (status >> 8))
