"""Objects the script's own namespace keeps: payloads held by closures registered in a module-level list,
and entries in a memo on a module-level service object (whose class's methods see the namespace as their
`__globals__`)."""

import time


class Payload:
    def __init__(self, i):
        self.fields = [i] * 10


class Entry:
    def __init__(self, i):
        self.i = i


ON_SHUTDOWN = []


def handle(i):
    payload = Payload(i)

    def cleanup():
        return payload

    ON_SHUTDOWN.append(cleanup)


class Service:
    def __init__(self):
        self._memo = {}

    def get(self, i):
        self._memo[i] = Entry(i)


SERVICE = Service()

if __name__ == "__main__":
    for i in range(3000):
        handle(i)
        SERVICE.get(i)
        if i % 100 == 0:
            time.sleep(0.1)
