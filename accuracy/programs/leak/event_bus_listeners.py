"""Each request creates a view that subscribes a bound method to an event bus and never unsubscribes:
the bus keeps every view (and its rows) alive."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.BUS

import time


class EventBus:
    def __init__(self):
        self.listeners = {}

    def subscribe(self, event, callback):
        self.listeners.setdefault(event, []).append(callback)


BUS = EventBus()


class View:
    def __init__(self, i):
        self.rows = [(i, k, f"cell {k}") for k in range(30)]  # expect: suspect
        BUS.subscribe("refresh", self.on_refresh)

    def on_refresh(self):
        return len(self.rows)


def main():
    for i in range(6000):
        View(i)
        if i % 20 == 0:
            time.sleep(0.02)
    print(f"{len(BUS.listeners['refresh'])} listeners")


if __name__ == "__main__":
    main()
