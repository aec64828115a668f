"""Each view subscribes to the module-level bus and is never unsubscribed: the bus keeps every view."""

import time

import events


class View:
    def __init__(self, number):
        self.number = number
        self.rendered = "<div>" + "x" * 2000 + "</div>"
        events.bus.subscribe(self.on_event)

    def on_event(self, event):
        pass


if __name__ == "__main__":
    for _step in range(40):
        for number in range(50):
            View(number)  # shown once, then dropped by the caller
        events.bus.publish("tick")
        time.sleep(0.1)
    print("views subscribed", len(events.bus.listeners))
