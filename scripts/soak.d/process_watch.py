"""The proxy's descriptors and memory, read from /proc (Linux only).

Descriptors are told apart by what they are: TCP sockets the proxy listens on, connections from clients (to one
of its ports), connections to Ollama (to the simulator's port), and everything else (epoll, eventfds, pipes,
log files), so that pooled idle connections to Ollama, which the proxy keeps for its upstream idle timeout, are
not mistaken for a leak.
"""

import os
from dataclasses import dataclass

TCP_LISTEN = "0A"


@dataclass
class Descriptors:
    total: int = 0
    listening: int = 0
    clients: int = 0       # connections accepted on the proxy or metrics port
    upstream: int = 0      # connections to Ollama
    other_sockets: int = 0
    not_sockets: int = 0

    @property
    def base(self):
        """What must come back exactly to its idle value: everything but connections."""
        return self.total - self.clients - self.upstream - self.other_sockets

    def __str__(self):
        return (f"{self.total} (clients {self.clients}, to Ollama {self.upstream}, listening {self.listening}, "
                f"other sockets {self.other_sockets}, not sockets {self.not_sockets})")


@dataclass
class Memory:
    rss_kb: int = 0
    anonymous_kb: int = 0  # private anonymous memory (heap, stacks): smaps_rollup's `Anonymous`


def socket_inodes(pid):
    """{inode} of the process's sockets, and the number of its descriptors."""
    inodes, total = set(), 0
    directory = f"/proc/{pid}/fd"
    for name in os.listdir(directory):
        total += 1
        try:
            target = os.readlink(f"{directory}/{name}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes, total


def tcp_table(pid):
    """inode -> (local port, remote port, state) for every TCP socket in the process's network namespace."""
    table = {}
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{name}") as file:
                next(file)
                for line in file:
                    fields = line.split()
                    local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                    table[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), state)
        except OSError:
            pass
    return table


def descriptors(pid, proxy_ports, upstream_port, detailed=True):
    if not detailed:
        return Descriptors(total=len(os.listdir(f"/proc/{pid}/fd")))
    inodes, total = socket_inodes(pid)
    table = tcp_table(pid)
    counts = Descriptors(total=total, not_sockets=total - len(inodes))
    for inode in inodes:
        local, remote, state = table.get(inode, (None, None, None))
        if state == TCP_LISTEN:
            counts.listening += 1
        elif local in proxy_ports:
            counts.clients += 1
        elif remote == upstream_port:
            counts.upstream += 1
        else:
            counts.other_sockets += 1
    return counts


def memory(pid):
    result = Memory()
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                result.rss_kb = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as file:
        for line in file:
            if line.startswith("Anonymous:"):
                result.anonymous_kb = int(line.split()[1])
    return result


def open_files_limit(pid):
    with open(f"/proc/{pid}/limits") as file:
        for line in file:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None
