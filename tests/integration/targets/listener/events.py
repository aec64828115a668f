"""A module-level event bus: subscribers are kept until they unsubscribe."""


class EventBus:
    def __init__(self):
        self.listeners = []

    def subscribe(self, callback):
        self.listeners.append(callback)

    def publish(self, event):
        for callback in self.listeners:
            callback(event)


bus = EventBus()
