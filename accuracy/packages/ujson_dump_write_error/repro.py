"""A log shipper that dumps each batch with ujson.dump() to a sink whose write() fails now and then
(a full disk, a closed socket); the failure is caught and the batch is retried later."""

import time

import ujson


class FlakySink:
    def write(self, text):
        raise OSError("disk full")


def ship(batch, sink):
    try:
        ujson.dump(batch, sink)  # expect: suspect
    except OSError:
        return False
    return True


def main():
    sink = FlakySink()
    for i in range(1500):
        batch = {"seq": i, "events": [f"event {i}:{k} " * 4 for k in range(200)]}
        ship(batch, sink)
        time.sleep(0.003)
    print("shipped")


if __name__ == "__main__":
    main()
