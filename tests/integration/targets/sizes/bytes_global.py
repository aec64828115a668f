"""A module-level bytes buffer made longer at every call (`buf += chunk`): a new, bigger object each time."""

import time

buf = b""


def receive(chunk):
    global buf
    buf += chunk  # expect: grows


def main():
    for i in range(300):
        receive(bytes([i % 256]) * 20000)
        time.sleep(0.02)
    print(len(buf))


if __name__ == "__main__":
    main()
