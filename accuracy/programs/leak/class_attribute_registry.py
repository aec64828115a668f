"""Every Connection registers itself in a class-level list for "debugging" and is never removed."""
# accuracy.verdict: leak
# accuracy.root: class attribute __main__.Connection.registry | Connection.registry

import time


class Connection:
    registry = []  # noqa: RUF012 -- the leak under test

    def __init__(self, peer):
        self.peer = peer
        self.buffer = bytearray(3000)
        Connection.registry.append(self)  # expect: suspect


def main():
    for i in range(6000):
        conn = Connection(f"10.0.{i % 256}.{i % 200}")
        conn.buffer[0] = 1
        if i % 20 == 0:
            time.sleep(0.02)
    print(f"{len(Connection.registry)} connections registered")


if __name__ == "__main__":
    main()
